//! Serde helpers for the update types' fields.

use serde::{Deserialize, Deserializer};

/// A field that is present, even as `null`, is `Some`: what lets JSON clear an optional column
/// (`"color": null`) while an absent field leaves it as it is. Use with `#[serde(default)]`.
pub(crate) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}
