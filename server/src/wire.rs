//! The fixed names that reach clients, logs and stores (reasons, audit kinds, key kinds), each
//! written once: [`wire_names!`] turns one table of variant = name into the enum, its `as_str`, its
//! `parse`, its `Serialize` and its `Display`, so no name is spelled in two places that could drift.

/// Defines an enum with one fixed name per variant; see the module documentation.
macro_rules! wire_names {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $wire:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name on the wire, in logs and in stores.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }

            /// The variant [`Self::as_str`] names, if any.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($wire => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_names;

#[cfg(test)]
mod tests {
    use crate::service::{DeadReason, SignInMethod};
    use crate::store::{AuditKind, KeyKind, RevokeReason};

    /// Every name parses back to its variant, is what serde writes, and no two variants share one.
    fn round_trips<T: Copy + PartialEq + std::fmt::Debug + serde::Serialize>(
        all: &[T],
        as_str: fn(T) -> &'static str,
        parse: fn(&str) -> Option<T>,
    ) {
        let mut names: Vec<&str> = all.iter().map(|variant| as_str(*variant)).collect();
        for variant in all {
            assert_eq!(parse(as_str(*variant)), Some(*variant));
            assert_eq!(serde_json::to_value(variant).ok(), Some(serde_json::Value::from(as_str(*variant))));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "a name used twice");
        assert_eq!(parse("no such name"), None);
    }

    #[test]
    fn every_wire_name_round_trips() {
        round_trips(RevokeReason::ALL, RevokeReason::as_str, RevokeReason::parse);
        round_trips(AuditKind::ALL, AuditKind::as_str, AuditKind::parse);
        round_trips(DeadReason::ALL, DeadReason::as_str, DeadReason::parse);
        round_trips(SignInMethod::ALL, SignInMethod::as_str, SignInMethod::parse);
        round_trips(KeyKind::ALL, KeyKind::as_str, KeyKind::parse);
        assert_eq!(AuditKind::LoginFailed.to_string(), "login_failed");
    }
}
