//! The deployed Lambda functions: the one table, besides the route table, that the per-function
//! parts of infra/template.yaml are generated from.
//!
//! A function's HTTP events are not listed here: they are its routes in the route table
//! ([`crate::routes::table`]). What is here is what the route table does not know: the
//! description, limits that differ from `Globals.Function`, environment variables of its own,
//! non-HTTP triggers, permissions beyond the common policy, and which Lambda-errors alarm watches
//! it. The logical IDs are derived from the name (`order-notify` → `OrderNotifyFunction`,
//! `OrderNotifyLogGroup`), so they cannot disagree with it.

use crate::alarms::{ErrorsAlarm, ERRORS, KIT_ERRORS, USAGE_PUSH_ERRORS};

/// One `AWS::Serverless::Function` and its log group.
#[derive(Debug)]
pub struct Function {
    /// The binary (`BuildProperties.Binary`), the crate under functions/, the `Function` metric
    /// dimension and the route table's `function`.
    pub name: &'static str,
    /// Comment lines written above the function (a section heading), without the `# `.
    pub comment: &'static str,
    pub description: &'static str,
    /// Seconds, when not `Globals.Function`'s 5 (the marketplace's own timeout).
    pub timeout_s: Option<u32>,
    /// MiB, when set on the function itself.
    pub memory_mb: Option<u32>,
    pub reserved_concurrency: Option<u32>,
    /// Variables added to `Globals.Function`'s environment.
    pub env: &'static [EnvVar],
    /// The DynamoDB actions the function may call on the table.
    pub table: TableAccess,
    /// Policy statements after the common two (table items, the secrets document), as YAML list
    /// items without indentation.
    pub extra_statements: &'static str,
    /// A trigger besides its routes.
    pub schedule: Option<Schedule>,
    /// The alarm on its `AWS/Lambda` `Errors`.
    pub errors_alarm: &'static ErrorsAlarm,
}

/// An environment variable of one function. Values are references to template parameters or
/// intrinsic functions, never literals: the secrets stay in Secrets Manager
/// (`KOOGATE_SECRET_ID`), and a test of this crate checks the names.
#[derive(Debug)]
pub struct EnvVar {
    pub name: &'static str,
    /// A comment line above the variable, without the `# `.
    pub comment: Option<&'static str>,
    /// The value as YAML, without indentation (may span lines).
    pub value: &'static str,
}

/// The DynamoDB actions granted on the table.
#[derive(Debug)]
pub enum TableAccess {
    /// Exactly `koogate_store::dynamodb_actions::ACTIONS_USED`.
    Store,
    /// A subset of them, for a function that touches only some items; generating fails when an
    /// action is not in `ACTIONS_USED`.
    Subset {
        actions: &'static [&'static str],
        /// Why a subset, without the `# `.
        comment: &'static str,
    },
}

/// An EventBridge schedule (a SAM `Schedule` event).
#[derive(Debug)]
pub struct Schedule {
    /// The event's logical name.
    pub event: &'static str,
    pub rate: &'static str,
    pub description: &'static str,
}

/// The V1 (legacy key) freshness window, for every function that serves a V1 route.
const V1_WINDOW: EnvVar = EnvVar {
    name: "KOOGATE_V1_WINDOW_SECS",
    comment: None,
    value: "Ref: V1WindowSecs",
};

/// A function with nothing but its routes: the common policy, the global settings.
const BASE: Function = Function {
    name: "",
    comment: "",
    description: "",
    timeout_s: None,
    memory_mb: None,
    reserved_concurrency: None,
    env: &[],
    table: TableAccess::Store,
    extra_statements: "",
    schedule: None,
    errors_alarm: &ERRORS,
};

/// What the event source mapping on the table stream needs, on this table's stream only, and
/// `events:PutEvents` on the configured bus only when one is configured.
const EVENT_DISPATCH_STATEMENTS: &str = "\
# What the event source mapping below needs, on this table's stream
# only. (Not a SAM DynamoDB event: SAM would attach the managed
# AWSLambdaDynamoDBExecutionRole, which grants these on every stream.)
- Sid: ReadTableStream
  Effect: Allow
  Action:
    - dynamodb:DescribeStream
    - dynamodb:GetRecords
    - dynamodb:GetShardIterator
    - dynamodb:ListStreams
  Resource:
    Fn::GetAtt:
      - Table
      - StreamArn
# Only when EventBusName is set, and only on that bus.
- Fn::If:
    - HasEventBus
    - Sid: PutEventsOnTheBus
      Effect: Allow
      Action:
        - events:PutEvents
      Resource:
        Fn::Sub: arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}
    - Ref: AWS::NoValue
";

const KIT_COMMENT: &str = "\
Joint-operation kit sync: one function per interface, each on its V2 path
(x-sign headers, access_keys.kit) and its V1 path (authToken header,
access_keys.legacy). The marketplace appends these paths to the registered
production address https://<domain>/saas.";

/// Every deployed function, in the order of the template.
pub const DEPLOYED: &[Function] = &[
    Function {
        name: "saas",
        description: "KooGallery basic interface (POST /saas) - SaaS instance lifecycle activities",
        ..BASE
    },
    Function {
        name: "saas-legacy",
        description: "KooGallery SaaS V1 interface (GET /saas, legacy key) - SaaS instance lifecycle activities",
        env: &[V1_WINDOW],
        ..BASE
    },
    Function {
        name: "license",
        description: "KooGallery License 2.0 interface (POST /license) - license code activities",
        ..BASE
    },
    Function {
        name: "license-legacy",
        description: "KooGallery old License interface (GET /license, legacy key) - getLicense, refreshLicense, expireLicense, releaseLicense",
        env: &[V1_WINDOW],
        ..BASE
    },
    Function {
        name: "order-notify",
        description: "KooGallery general interface (POST /order-notify) - order notification",
        ..BASE
    },
    Function {
        name: "tenant-sync",
        comment: KIT_COMMENT,
        description: "KooGallery joint-operation kit tenantSync - tenant sync (the enterprise that bound the app)",
        env: &[V1_WINDOW],
        errors_alarm: &KIT_ERRORS,
        ..BASE
    },
    Function {
        name: "application-sync",
        description: "KooGallery joint-operation kit applicationSync - application sync (OAuth client of the tenant; clientSecret decrypted with the merchant's RSA key)",
        env: &[V1_WINDOW],
        errors_alarm: &KIT_ERRORS,
        ..BASE
    },
    Function {
        name: "auth-sync",
        description: "KooGallery joint-operation kit authSync - user authorisation sync",
        env: &[V1_WINDOW],
        errors_alarm: &KIT_ERRORS,
        ..BASE
    },
    Function {
        name: "single-org-sync",
        description: "KooGallery joint-operation kit singleOrgSync - department incremental sync",
        env: &[V1_WINDOW],
        errors_alarm: &KIT_ERRORS,
        ..BASE
    },
    Function {
        name: "all-org-sync",
        description: "KooGallery joint-operation kit allOrgSync - department full sync",
        env: &[V1_WINDOW],
        errors_alarm: &KIT_ERRORS,
        ..BASE
    },
    Function {
        name: "usage-push",
        comment: "\
------------------------------------------------------- usage push ---
Not a route: EventBridge runs it every 5 minutes. Pending usage records are
due once their interval has ended, so hourly usage reaches the marketplace
within the first quarter hour (docs/protocol.md (outbound) 3.3). One run at a time
(ReservedConcurrentExecutions: 1); the store's leases keep even overlapping
runs from sending a record twice.",
        description: "Pushes pending pay-per-use usage records to the KooGallery usage API (scheduled)",
        timeout_s: Some(300),
        reserved_concurrency: Some(1),
        table: TableAccess::Subset {
            actions: &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
            ],
            comment: "\
A subset of ACTIONS_USED of shared/store/src/dynamodb_actions.rs:
usage records and their pending pointers.",
        },
        schedule: Some(Schedule {
            event: "EveryFiveMinutes",
            rate: "rate(5 minutes)",
            description: "push due usage records",
        }),
        errors_alarm: &USAGE_PUSH_ERRORS,
        ..BASE
    },
    Function {
        name: "sso",
        comment: "\
------------------------------------------------- joint-operation login ---
Browser routes: no marketplace signature; redirects, cookies and JSON.",
        description: "Joint-operation login (GET /sso/login, /sso/callback, /sso/logout, /sso/session)",
        env: &[
            EnvVar {
                name: "KOOGATE_SSO_APP_ID",
                comment: None,
                value: "Ref: SsoAppId",
            },
            EnvVar {
                name: "KOOGATE_SSO_PUBLIC_URL",
                comment: None,
                value: "Ref: SsoPublicUrl",
            },
            EnvVar {
                name: "KOOGATE_SSO_RETURN_HOSTS",
                comment: None,
                value: "Ref: SsoReturnHosts",
            },
        ],
        ..BASE
    },
    Function {
        name: "product-api",
        comment: "\
------------------------------------------------------ the ISV's side ---
Product API (README, \"Connecting your product\"): the ISV's product completes asynchronous
provisioning, delivers asynchronous licenses, records usage and reads
instances. Bearer tokens (isv_api_tokens of the secrets document), checked by
the function; nothing here is signed with a marketplace access key.",
        description: "Product API for the ISV's product (/isv/v1 - instances, provisioned, licenses, usage; bearer token)",
        ..BASE
    },
    Function {
        name: "event-dispatch",
        comment: "\
Event delivery (README, \"Connecting your product\"): every committed change records an
event and an open pointer (pk events-open#...) in the same write. The table's
stream invokes this function for those pointers (within about a second of the
commit: batching window 1 s), and EventBridge runs it every minute for retries
that have come due and anything the stream trigger missed (crash recovery).
Each delivery attempt has a 10 s timeout. The store's leases keep overlapping
runs from delivering an event twice at the same time.",
        description: "Delivers recorded events to the ISV's webhook and EventBridge bus (table stream and every minute)",
        timeout_s: Some(60),
        memory_mb: Some(256),
        env: &[EnvVar {
            name: "KOOGATE_EVENT_BUS",
            comment: Some("The bus ARN, only when EventBusName is set (absent otherwise)."),
            value: "\
Fn::If:
  - HasEventBus
  - Fn::Sub: arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}
  - Ref: AWS::NoValue",
        }],
        extra_statements: EVENT_DISPATCH_STATEMENTS,
        schedule: Some(Schedule {
            event: "EveryMinute",
            rate: "rate(1 minute)",
            description: "deliver events whose retry is due, and any the stream trigger missed",
        }),
        ..BASE
    },
];

/// `order-notify` → `OrderNotify`: the stem of the function's logical IDs.
pub fn pascal_case(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

impl Function {
    /// The logical ID of the `AWS::Serverless::Function`.
    pub fn logical_id(&self) -> String {
        format!("{}Function", pascal_case(self.name))
    }

    /// The logical ID of its `AWS::Logs::LogGroup`.
    pub fn log_group_id(&self) -> String {
        format!("{}LogGroup", pascal_case(self.name))
    }
}
