//! Telling cluster traffic from other calls without decoding the call.

use serde::Deserialize;

/// Whether a request frame's call is cluster traffic ([`Call::Cluster`]), read without
/// decoding the call: its name is compared where the decoder read it, and its content is
/// skipped without being kept. A cluster node refuses a large frame that is not cluster
/// traffic by this, before decoding it (`from_cbor`'s bound applies to what is read).
pub fn is_cluster_call(frame: &[u8]) -> Result<bool, crate::frame::FrameError> {
    use serde::de::{EnumAccess, IgnoredAny, VariantAccess, Visitor};
    /// Whether a call's name is `cluster`.
    struct IsCluster(bool);
    impl<'de> Deserialize<'de> for IsCluster {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IsCluster, D::Error> {
            struct Name;
            impl<'de> Visitor<'de> for Name {
                type Value = IsCluster;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a call's name")
                }
                fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<IsCluster, E> {
                    Ok(IsCluster(s == "cluster"))
                }
                fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<IsCluster, E> {
                    Ok(IsCluster(b == b"cluster"))
                }
            }
            d.deserialize_identifier(Name)
        }
    }
    /// Whether a call is `cluster`.
    struct CallKind(bool);
    impl<'de> Deserialize<'de> for CallKind {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CallKind, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = CallKind;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a call")
                }
                fn visit_enum<A: EnumAccess<'de>>(self, a: A) -> Result<CallKind, A::Error> {
                    let (name, rest) = a.variant::<IsCluster>()?;
                    rest.newtype_variant::<IgnoredAny>()?;
                    Ok(CallKind(name.0))
                }
            }
            d.deserialize_enum("Call", &[], V)
        }
    }
    // As strict as `RequestFrame`, so that both read the same frames.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Head {
        #[allow(dead_code)]
        version: u16,
        call: CallKind,
    }
    crate::frame::from_cbor::<Head>(frame).map(|h| h.call.0)
}
