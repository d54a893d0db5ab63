//! Whether a value holds a float JSON cannot represent. serde_json writes NaN and ±infinity as `null`
//! without an error, so `set_setting("ratio", &f64::NAN)` would store `null` and the value would no longer
//! read back as the type it was written with. This walks the value once, through its own `Serialize`, and
//! stops at the first non-finite `f32` or `f64`, wherever it is (a field, an element, a map key or value).
//! It never keeps or shows what it walks.

use std::fmt;

use serde::ser::{self, Serialize};

/// `true` if `value`'s serialisation holds a NaN or an infinity, or fails (then serde_json fails too).
pub(crate) fn holds_non_finite<T: Serialize + ?Sized>(value: &T) -> bool {
    value.serialize(Walk).is_err()
}

/// The walk stopped: a non-finite float, or the value's own `Serialize` failed. Carries nothing of the value.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not finite")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    // The message could quote the value: dropped.
    fn custom<M: fmt::Display>(_: M) -> Stop {
        Stop
    }
}

struct Walk;

type Done = Result<(), Stop>;

fn float(finite: bool) -> Done {
    if finite { Ok(()) } else { Err(Stop) }
}

/// Serializer methods of values that are always representable: nothing to walk.
macro_rules! accept {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, _: $ty) -> Done {
            Ok(())
        })*
    };
}

/// The compound serializers whose one method takes each part (after a name, for struct fields).
macro_rules! walk_parts {
    ($($kind:path => $method:ident($($name_ty:ty)?)),* $(,)?) => {
        $(impl $kind for Walk {
            type Ok = ();
            type Error = Stop;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $name_ty,)? value: &T) -> Done {
                value.serialize(Walk)
            }
            fn end(self) -> Done {
                Ok(())
            }
        })*
    };
}

impl ser::Serializer for Walk {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Walk;
    type SerializeTuple = Walk;
    type SerializeTupleStruct = Walk;
    type SerializeTupleVariant = Walk;
    type SerializeMap = Walk;
    type SerializeStruct = Walk;
    type SerializeStructVariant = Walk;

    fn serialize_f32(self, v: f32) -> Done {
        float(v.is_finite())
    }
    fn serialize_f64(self, v: f64) -> Done {
        float(v.is_finite())
    }
    // Every scalar but a float is representable.
    accept!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_u128: u128,
        serialize_char: char,
        serialize_str: &str,
        serialize_bytes: &[u8],
        serialize_unit_struct: &'static str,
    );
    fn serialize_none(self) -> Done {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        value.serialize(Walk)
    }
    fn serialize_unit(self) -> Done {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Done {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Done {
        value.serialize(Walk)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Done {
        value.serialize(Walk)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Walk, Stop> {
        Ok(Walk)
    }
    fn serialize_tuple(self, _: usize) -> Result<Walk, Stop> {
        Ok(Walk)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Walk, Stop> {
        Ok(Walk)
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Walk, Stop> {
        Ok(Walk)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Walk, Stop> {
        Ok(Walk)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Walk, Stop> {
        Ok(Walk)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Walk, Stop> {
        Ok(Walk)
    }
}

// Each part of a sequence, tuple, map or struct is walked in turn.
walk_parts!(
    ser::SerializeSeq => serialize_element(),
    ser::SerializeTuple => serialize_element(),
    ser::SerializeTupleStruct => serialize_field(),
    ser::SerializeTupleVariant => serialize_field(),
    ser::SerializeStruct => serialize_field(&'static str),
    ser::SerializeStructVariant => serialize_field(&'static str),
);

impl ser::SerializeMap for Walk {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
        key.serialize(Walk)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(Walk)
    }
    fn end(self) -> Done {
        Ok(())
    }
}
