//! [`WireName`]: unit enums that travel as one of a fixed set of names (`"block"`,
//! `"queued"`), read and written through one table of names per enum.
//!
//! serde's derive compiles, for every such enum, a visitor that takes the name as text,
//! as bytes or as an index, and the enum access around it: about 1.5 KB of wasm apiece.
//! Through the table, reading a name is a string and a search, and the same table serves
//! the code that parses or prints names itself.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Unexpected};
use serde::ser::Serializer;

/// A unit enum with a wire name for each variant.
pub trait WireName: Copy + PartialEq + 'static {
    /// Every variant with its wire name.
    const NAMES: &'static [(&'static str, Self)];

    /// The variant's wire name.
    fn name(self) -> &'static str {
        let entry = Self::NAMES.iter().find(|(_, value)| *value == self);
        // Every variant is in its table: each enum's tests read back every name.
        entry.map_or("", |(name, _)| name)
    }

    /// The variant named `name`, if there is one.
    fn from_name(name: &str) -> Option<Self> {
        let entry = Self::NAMES.iter().find(|(known, _)| *known == name);
        entry.map(|(_, value)| *value)
    }
}

/// Writes `value` as its name.
pub fn serialize<T: WireName, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.name())
}

/// Reads a name of `T`; any other value is an error that lists the names.
pub fn deserialize<'de, T: WireName, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    let name = String::deserialize(deserializer)?;
    T::from_name(&name)
        .ok_or_else(|| de::Error::invalid_value(Unexpected::Str(&name), &OneOf(T::NAMES)))
}

/// What a name must be: one of the table's.
struct OneOf<T: 'static>(&'static [(&'static str, T)]);

impl<T> de::Expected for OneOf<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("one of")?;
        for (at, (name, _)) in self.0.iter().enumerate() {
            let separator = if at == 0 { " " } else { ", " };
            write!(formatter, "{separator}`{name}`")?;
        }
        Ok(())
    }
}

/// Implements `Serialize` and `Deserialize` for [`WireName`] enums, through their names.
macro_rules! serde_by_wire_name {
    ($($enum:ty),+ $(,)?) => {$(
        impl serde::Serialize for $enum {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $crate::wire_name::serialize(self, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::wire_name::deserialize(deserializer)
            }
        }
    )+};
}

pub(crate) use serde_by_wire_name;

#[cfg(test)]
pub(crate) mod tests {
    use super::WireName;

    /// Checks that every variant of `T` (as `all` lists them) has a name, that the names
    /// are distinct, and that each one reads back as its variant, as JSON too.
    pub fn every_name_reads_back<T>(all: &[T])
    where
        T: WireName + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
    {
        assert_eq!(T::NAMES.len(), all.len(), "a variant is missing from NAMES");
        for &value in all {
            let name = value.name();
            assert!(!name.is_empty(), "{value:?} has no name");
            assert_eq!(T::from_name(name), Some(value));
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_slice::<T>(json.as_bytes()).unwrap(), value);
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Light {
        Red,
        Green,
    }

    impl WireName for Light {
        const NAMES: &'static [(&'static str, Self)] =
            &[("red", Light::Red), ("green", Light::Green)];
    }

    super::serde_by_wire_name!(Light);

    #[test]
    fn names_read_back_and_others_are_refused_with_the_list() {
        every_name_reads_back(&[Light::Red, Light::Green]);
        let error = serde_json::from_slice::<Light>(br#""blue""#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value: string \"blue\", expected one of `red`, `green`"
        );
        assert!(serde_json::from_slice::<Light>(b"1").is_err());
        assert!(serde_json::from_slice::<Light>(br#"{"red": null}"#).is_err());
    }
}
