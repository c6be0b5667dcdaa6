//! The business identifiers a request concerns, for its log line: so that "what happened to
//! order X?" is answered by searching the logs for X.
//!
//! Only identifiers are taken — never a secret, a phone number, an e-mail address, a client
//! secret or a license code — from the verified body (top level, and the first `orderInfo` entry
//! of a fat newInstance body), the verified V1 query parameters, and the answer (the instanceId
//! koogate assigned).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// The identifiers of one request; absent ones are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceIds {
    pub order_id: Option<String>,
    pub order_line_id: Option<String>,
    pub instance_id: Option<String>,
    pub business_id: Option<String>,
    pub tenant_id: Option<String>,
    pub event_id: Option<String>,
}

/// Identifiers are short; anything longer is cut (a hostile body cannot flood the log).
const MAX_LEN: usize = 128;

fn clip(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.chars().take(MAX_LEN).collect())
}

impl TraceIds {
    /// Identifiers a function read from its typed request ([`crate::Call::trace`]), completed as
    /// [`TraceIds::collect`] completes the skimmed ones: each clipped (an empty one is absent),
    /// and the instance, when the request did not name it, read from the answer.
    pub fn completed(self, answer: &[u8]) -> TraceIds {
        let clipped = |id: Option<String>| id.as_deref().and_then(clip);
        let mut ids = TraceIds {
            order_id: clipped(self.order_id),
            order_line_id: clipped(self.order_line_id),
            instance_id: clipped(self.instance_id),
            business_id: clipped(self.business_id),
            tenant_id: clipped(self.tenant_id),
            event_id: clipped(self.event_id),
        };
        if ids.instance_id.is_none() {
            ids.instance_id = answered_instance(answer);
        }
        ids
    }

    /// From a verified JSON body, V1 parameters and the rendered answer: for a request whose
    /// function did not name its identifiers (a body it refused, a V1 query).
    ///
    /// The body is skimmed, not parsed into a tree: only the six identifiers (and the first
    /// `orderInfo` entry's) are kept and every other value is skipped without allocating, so the
    /// log line costs little beside the request itself. The answer is read only when neither the
    /// body nor the parameters name the instance. A body that does not parse yields no
    /// identifiers (its answer says why it was refused).
    pub fn collect(body: &[u8], params: &[(String, String)], answer: &[u8]) -> TraceIds {
        let top: Ids = serde_json::from_slice(body).unwrap_or_default();
        let first = top.order_info.0.map(|b| *b).unwrap_or_default();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let pick =
            |own: Id, fat: Id, name: &str| own.0.or(fat.0).or_else(|| param(name).and_then(clip));
        let mut ids = TraceIds {
            order_id: pick(top.order_id, first.order_id, "orderId"),
            order_line_id: pick(top.order_line_id, first.order_line_id, "orderLineId"),
            instance_id: pick(top.instance_id, first.instance_id, "instanceId"),
            business_id: pick(top.business_id, first.business_id, "businessId"),
            tenant_id: pick(top.tenant_id, first.tenant_id, "tenantId"),
            event_id: pick(top.event_id, first.event_id, "eventId"),
        };
        if ids.instance_id.is_none() {
            ids.instance_id = answered_instance(answer);
        }
        ids
    }
}

/// The `instanceId` koogate put in its answer, if any.
fn answered_instance(answer: &[u8]) -> Option<String> {
    let answered: Ids = serde_json::from_slice(answer).unwrap_or_default();
    answered.instance_id.0
}

/// The identifiers a JSON object carries, and those of its first `orderInfo` entry (a fat
/// newInstance body). A repeated key makes the object unreadable here: no identifiers then.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Ids {
    order_id: Id,
    order_line_id: Id,
    instance_id: Id,
    business_id: Id,
    tenant_id: Id,
    event_id: Id,
    order_info: FirstOrder,
}

/// The visitor arms of a value that counts as absent: a scalar is skipped as it is read.
macro_rules! absent_scalars {
    ($absent:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($absent)
        }
    };
}

/// Skips a list or an object without keeping it.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// One identifier: a non-empty string or a number, clipped; any other value counts as absent.
#[derive(Debug, Default)]
struct Id(Option<String>);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an identifier")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Id, E> {
                Ok(Id(clip(s)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Id, E> {
                Ok(Id(Some(n.to_string())))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Id, E> {
                Ok(Id(Some(n.to_string())))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Id, E> {
                Ok(Id(Some(n.to_string())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Id, A::Error> {
                skip_seq(seq).map(|()| Id(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Id, A::Error> {
                skip_map(map).map(|()| Id(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `orderInfo`: the first entry's identifiers if it is an object; anything else is skipped.
#[derive(Debug, Default)]
struct FirstOrder(Option<Box<Ids>>);

/// An `orderInfo` entry: an object's identifiers, or nothing for any other value.
struct Entry(Option<Ids>);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an order")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                Ids::deserialize(de::value::MapAccessDeserializer::new(map)).map(|i| Entry(Some(i)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Entry, A::Error> {
                skip_seq(seq).map(|()| Entry(None))
            }
            absent_scalars!(Entry(None));
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for FirstOrder {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FirstOrder, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FirstOrder;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of orders")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstOrder, A::Error> {
                let first = seq.next_element::<Entry>()?.and_then(|e| e.0).map(Box::new);
                skip_seq(seq).map(|()| FirstOrder(first))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FirstOrder, A::Error> {
                skip_map(map).map(|()| FirstOrder(None))
            }
            absent_scalars!(FirstOrder(None));
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_come_from_the_body_the_fat_order_the_params_and_the_answer() {
        let fat = br#"{"activity":"newInstance","buyerInfo":{"mobilePhone":"13800000000","email":"a@b.c"},
            "orderInfo":[{"businessId":"b-1","orderId":"CS1"}],"testFlag":"0"}"#;
        let ids = TraceIds::collect(fat, &[], br#"{"resultCode":"000000","instanceId":"i-9"}"#);
        assert_eq!(ids.order_id.as_deref(), Some("CS1"));
        assert_eq!(ids.business_id.as_deref(), Some("b-1"));
        assert_eq!(ids.instance_id.as_deref(), Some("i-9"));
        let v1 = [("orderId".to_string(), "CS2".to_string())];
        assert_eq!(
            TraceIds::collect(b"", &v1, b"").order_id.as_deref(),
            Some("CS2")
        );
        let long = format!(r#"{{"tenantId":"{}"}}"#, "t".repeat(500));
        assert_eq!(
            TraceIds::collect(long.as_bytes(), &[], b"")
                .tenant_id
                .map(|t| t.len()),
            Some(MAX_LEN)
        );
    }

    #[test]
    fn odd_values_count_as_absent_and_never_hide_the_others() {
        // Numbers are identifiers; objects, lists, booleans and nulls are not. A first order that
        // is not an object, or later orders, are skipped.
        let body = br#"{"orderId":12345,"tenantId":{"x":[1,2]},"eventId":null,"businessId":true,
            "orderInfo":["odd",{"orderLineId":"L-2"}],"instanceId":["i"],"nested":{"orderId":"no"}}"#;
        let ids = TraceIds::collect(body, &[], br#"{"instanceId":"i-answer"}"#);
        assert_eq!(ids.order_id.as_deref(), Some("12345"));
        assert_eq!(ids.tenant_id, None);
        assert_eq!(ids.event_id, None);
        assert_eq!(ids.business_id, None);
        assert_eq!(ids.order_line_id, None);
        assert_eq!(ids.instance_id.as_deref(), Some("i-answer"));
        // The body's own instanceId wins over the answer's; an unreadable body gives nothing.
        let own = TraceIds::collect(br#"{"instanceId":"i-1"}"#, &[], br#"{"instanceId":"i-2"}"#);
        assert_eq!(own.instance_id.as_deref(), Some("i-1"));
        assert_eq!(
            TraceIds::collect(b"{not json", &[], b"[]"),
            TraceIds::default()
        );
        // The fat order's identifiers fill in what the top level lacks, not what it has.
        let fat = br#"{"orderId":"top","orderInfo":[{"orderId":"inner","orderLineId":"L-1"}]}"#;
        let ids = TraceIds::collect(fat, &[], b"");
        assert_eq!(ids.order_id.as_deref(), Some("top"));
        assert_eq!(ids.order_line_id.as_deref(), Some("L-1"));
    }
}
