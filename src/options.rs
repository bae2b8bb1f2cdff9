//! One definition per option. [`options!`] takes a group of options written once, as clap
//! fields (doc comment, `#[arg(...)]`, name, type), and makes of it:
//!
//! - the clap `Args` struct: the flags, their `--help`, and so the man page and the
//!   completions (`igmpd generate`);
//! - its config layer: the same fields, each `Option`al, keyed by the field's name (the
//!   flag's long name with underscores), read from a config section ([`Layer::read`]),
//!   stacked over a lower layer ([`Layer::over`]) and applied over the flags' built-in
//!   defaults ([`Layer::resolve`]).
//!
//! [`section!`] makes a config section of several groups (and keys that are no option,
//! like a bridge's `vlan` tables): it takes every key of its groups and nothing else.
//! Adding a field to a group adds the flag to every subcommand that flattens the group and
//! the key to every section made of it.

use std::fmt;
use std::time::Duration;

use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// How a flag's value is written in the config file: the TOML value read ([`Setting::Raw`])
/// and how it sets the flag's field.
pub trait Setting {
    /// What the config file holds for it.
    type Raw: DeserializeOwned + Clone + PartialEq + fmt::Debug;
    /// Sets the field to `raw`.
    fn set(&mut self, raw: Self::Raw);
}

macro_rules! as_written {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            type Raw = $t;
            fn set(&mut self, raw: $t) {
                *self = raw;
            }
        }
    )*};
}
as_written!(bool, u8, u32, String, Vec<String>);

/// Durations are written as in the flags: `"125s"`.
impl Setting for Duration {
    type Raw = Dur;
    fn set(&mut self, raw: Dur) {
        *self = raw.0;
    }
}

/// A socket address to listen on, written as in the flags: "127.0.0.1:9654",
/// "[::1]:9654".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub std::net::SocketAddr);

impl std::str::FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(ListenAddr).map_err(|_| {
            format!("{s:?} is not a socket address: write IPv4:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9654")
        })
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Unset unless written: no default address (the endpoint is off).
impl Setting for Option<ListenAddr> {
    type Raw = ListenAddr;
    fn set(&mut self, raw: ListenAddr) {
        *self = Some(raw);
    }
}

/// A flag without a default (`Option<T>`) takes the key's value as `T` does.
impl<T: Setting + Default> Setting for Option<T> {
    type Raw = T::Raw;
    fn set(&mut self, raw: T::Raw) {
        self.get_or_insert_with(T::default).set(raw);
    }
}

/// Host joins are written as in the flags: `["239.1.1.1", "10.0.0.5/232.1.1.1"]`.
impl Setting for Vec<igmpd_querier::core::HostJoin> {
    type Raw = Vec<Join>;
    fn set(&mut self, raw: Vec<Join>) {
        *self = raw.into_iter().map(|j| j.0).collect();
    }
}

/// Flood prefixes are written as in the flag: `["ff02::1:ff00:0/104", "ff02::fb"]`.
impl Setting for Vec<igmpd_snooping::core::FloodPrefix> {
    type Raw = Vec<Flood>;
    fn set(&mut self, raw: Vec<Flood>) {
        *self = raw.into_iter().map(|f| f.0).collect();
    }
}

/// A flood prefix written as in `--flood-group`; a bad one is an error at its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flood(pub igmpd_snooping::core::FloodPrefix);

impl<'de> Deserialize<'de> for Flood {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Flood).map_err(serde::de::Error::custom)
    }
}

/// A host join written as in the flag: "239.1.1.1", "10.0.0.5/232.1.1.1"; a bad one is
/// an error at its own place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Join(pub igmpd_querier::core::HostJoin);

impl<'de> Deserialize<'de> for Join {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Join).map_err(serde::de::Error::custom)
    }
}

/// A duration written as in the flags: "125s", "500ms", "1m30s".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::duration::parse(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// A group's options as a config layer: each unset unless written.
pub trait Layer: Default + Clone + PartialEq + fmt::Debug {
    /// The group's flags.
    type Args: clap::Args + clap::FromArgMatches;
    /// The config keys, in the flags' order.
    const KEYS: &'static [&'static str];
    /// Reads `key`'s value from a config section; false when `key` is not this group's.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
    /// `self` over `lower`: every key written here wins.
    #[must_use]
    fn over(&self, lower: &Self) -> Self;
    /// Sets the flags this layer has a value for.
    fn apply(&self, args: &mut Self::Args);
    /// The flags' built-in defaults with this layer applied.
    fn resolve(&self) -> Self::Args {
        let mut args = builtin::<Self::Args>();
        self.apply(&mut args);
        args
    }
}

/// A group's built-in defaults: what clap makes of no flags.
pub fn builtin<A: clap::Args + clap::FromArgMatches>() -> A {
    let matches = A::augment_args(clap::Command::new("igmpd")).get_matches_from(["igmpd"]);
    A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Defines a group of options once: the clap `Args` struct `$args` (its fields as written)
/// and its config layer `$layer` (see the module documentation).
macro_rules! options {
    (
        $(#[$meta:meta])*
        pub struct $args:ident / $layer:ident {
            $(
                $(#[doc = $doc:literal])*
                #[arg($($arg:tt)*)]
                pub $field:ident: $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, clap::Args)]
        pub struct $args {
            $(
                $(#[doc = $doc])*
                #[arg($($arg)*)]
                pub $field: $ty,
            )*
        }

        #[doc = concat!("[`", stringify!($args), "`] as a config layer.")]
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $layer {
            $(
                #[doc = concat!("`", stringify!($field), "`, if written.")]
                pub $field: Option<<$ty as $crate::options::Setting>::Raw>,
            )*
        }

        impl $crate::options::Layer for $layer {
            type Args = $args;
            const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn read<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                match key {
                    $(stringify!($field) => self.$field = Some(map.next_value()?),)*
                    _ => return Ok(false),
                }
                Ok(true)
            }

            fn over(&self, lower: &Self) -> Self {
                Self {
                    $($field: self.$field.clone().or_else(|| lower.$field.clone()),)*
                }
            }

            fn apply(&self, args: &mut $args) {
                $(
                    if let Some(v) = &self.$field {
                        $crate::options::Setting::set(&mut args.$field, v.clone());
                    }
                )*
            }
        }
    };
}
pub(crate) use options;

/// Defines a config section made of option groups ([`Layer`]s) and other keys: it takes
/// every key of its groups and nothing else (serde's `flatten` cannot deny unknown keys,
/// so the section reads the keys itself and hands each to its group).
macro_rules! section {
    (
        $(#[$meta:meta])*
        struct $name:ident { $($group:ident: $layer:ty),* $(; $($key:ident: $ty:ty),*)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $(pub $group: $layer,)*
            $($(pub $key: $ty,)*)?
        }

        impl $name {
            /// Every key of the section, in order.
            pub fn keys() -> &'static [&'static str] {
                static KEYS: std::sync::OnceLock<Vec<&'static str>> =
                    std::sync::OnceLock::new();
                KEYS.get_or_init(|| {
                    [
                        $(<$layer as $crate::options::Layer>::KEYS,)*
                        $(&[$(stringify!($key)),*],)?
                    ]
                    .concat()
                })
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Section;
                impl<'de> serde::de::Visitor<'de> for Section {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($name)))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        use $crate::options::{Key, Layer};
                        let mut s = $name::default();
                        while let Some(key) = map.next_key_seed(Key($name::keys()))? {
                            // Exactly one of them reads it: the keys are theirs.
                            let read = $(s.$group.read(key, &mut map)? ||)*
                                $($($crate::options::other(&mut s.$key, stringify!($key), key, &mut map)? ||)*)?
                                false;
                            debug_assert!(read, "{key}: a key of {} nothing reads", stringify!($name));
                        }
                        Ok(s)
                    }
                }
                d.deserialize_struct(stringify!($name), $name::keys(), Section)
            }
        }
    };
}

pub(crate) use section;

/// A section's key, checked against its keys where it is read (so that an error names the
/// key's line, as serde's derived `deny_unknown_fields` does).
#[derive(Debug)]
pub struct Key(pub &'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = &'static str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Key {
    type Value = &'static str;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("field identifier")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<&'static str, E> {
        self.0
            .iter()
            .find(|k| **k == v)
            .copied()
            .ok_or_else(|| E::unknown_field(v, self.0))
    }
}

/// Reads a key of a section that is not an option (`vlan`); false when `key` is not `name`.
pub fn other<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut T,
    name: &str,
    key: &str,
    map: &mut A,
) -> Result<bool, A::Error> {
    if key != name {
        return Ok(false);
    }
    *slot = map.next_value()?;
    Ok(true)
}
