# Logs: koogate writes one JSON line per request to stderr ({"message":"answered",
# "result_code":"000000",...}); FunctionGraph ships function output to this LTS stream (on the ECS,
# install the ICAgent and collect the journal of koogate.service into the same stream).
resource "huaweicloud_lts_group" "koogate" {
  group_name  = "${var.name}-logs"
  ttl_in_days = 30
}

resource "huaweicloud_lts_stream" "koogate" {
  group_id    = huaweicloud_lts_group.koogate.id
  stream_name = "${var.name}-requests"
}

# Any answer other than 000000 in the last 5 minutes. LTS splits the line at its default
# delimiters (among them , " : { }), so 000000 is a word of a successful line and of no other.
resource "huaweicloud_lts_keywords_alarm_rule" "failed_answers" {
  name        = "${var.name}-failed-answers"
  description = "koogate answered a call with a resultCode other than 000000; the log lines say which (function, activity, result_code, reason)."
  alarm_level = "MAJOR"

  keywords_requests {
    keywords               = "answered and result_code and not 000000"
    condition              = ">"
    number                 = 0
    log_group_id           = huaweicloud_lts_group.koogate.id
    log_stream_id          = huaweicloud_lts_stream.koogate.id
    search_time_range_unit = "minute"
    search_time_range      = 5
  }

  frequency {
    type            = "FIXED_RATE"
    fixed_rate_unit = "minute"
    fixed_rate      = 5
  }

  send_notifications     = var.lts_alarm_action_rule != ""
  alarm_action_rule_name = var.lts_alarm_action_rule != "" ? var.lts_alarm_action_rule : null
}

resource "huaweicloud_smn_topic" "alarms" {
  name         = "${var.name}-alarms"
  display_name = "koogate alarms"
}

resource "huaweicloud_smn_subscription" "email" {
  count     = var.alarm_email != "" ? 1 : 0
  topic_urn = huaweicloud_smn_topic.alarms.id
  endpoint  = var.alarm_email
  protocol  = "email"
}

# Cloud Eye: the function failed to answer at all (crash, timeout, not started).
resource "huaweicloud_ces_alarmrule" "function_errors" {
  count                = local.serverless ? 1 : 0
  alarm_name           = "${var.name}-function-errors"
  alarm_description    = "The koogate FunctionGraph function returned errors (SYS.FunctionGraph failcount)."
  alarm_action_enabled = true
  alarm_enabled        = true
  alarm_type           = "MULTI_INSTANCE"

  metric {
    namespace = "SYS.FunctionGraph"
  }

  resources {
    dimensions {
      name  = "package-functionname"
      value = "default-${var.name}"
    }
  }

  condition {
    period              = 300
    filter              = "sum"
    comparison_operator = ">"
    value               = 0
    unit                = "Count"
    count               = 1
    suppress_duration   = 3600
    metric_name         = "failcount"
    alarm_level         = 2
  }

  alarm_actions {
    type              = "notification"
    notification_list = [huaweicloud_smn_topic.alarms.id]
  }
}

# Cloud Eye: the ELB sees no healthy koogate (GET /healthz on the member fails).
resource "huaweicloud_ces_alarmrule" "elb_unhealthy" {
  count                = local.on_ecs ? 1 : 0
  alarm_name           = "${var.name}-elb-unhealthy"
  alarm_description    = "No healthy koogate behind the ELB (SYS.ELB m9_abnormal_servers)."
  alarm_action_enabled = true
  alarm_enabled        = true
  alarm_type           = "MULTI_INSTANCE"

  metric {
    namespace = "SYS.ELB"
  }

  resources {
    dimensions {
      name  = "lbaas_instance_id"
      value = huaweicloud_elb_loadbalancer.koogate[0].id
    }
  }

  condition {
    period              = 60
    filter              = "max"
    comparison_operator = ">"
    value               = 0
    unit                = "Count"
    count               = 3
    suppress_duration   = 3600
    metric_name         = "m9_abnormal_servers"
    alarm_level         = 2
  }

  alarm_actions {
    type              = "notification"
    notification_list = [huaweicloud_smn_topic.alarms.id]
  }
}
