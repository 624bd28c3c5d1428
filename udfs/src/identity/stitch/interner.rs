//! Interning identifiers `(id_type, id_value)` read from Arrow arrays into dense `u32` node ids.
//!
//! Values are hashed and compared as bytes straight out of the Arrow buffers; only the first
//! occurrence of an identifier copies its bytes (into one arena), so re-seen values cost a hash
//! and a lookup, never an allocation. Per-node data lives in flat vectors indexed by node id.

use std::hash::BuildHasher;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, LargeStringArray, StringArray, StringViewArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, exec_err, internal_err};
use hashbrown::{DefaultHashBuilder, HashTable};

/// Row access to a string column of any encoding, as bytes.
///
/// Unlike the scalar functions' kernels (`string_kernel`, which map whole arrays to `Utf8`),
/// the interner only reads: a dictionary is read through its keys, never decoded.
pub(crate) enum StringColumn<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    /// A dictionary: its keys normalised to `usize`, the key nulls, and the values.
    Dictionary {
        keys: Vec<usize>,
        nulls: Option<NullBuffer>,
        values: Box<StringColumn<'a>>,
    },
    /// A column of type `Null` (e.g. `NULL AS b_type` in single-node rows).
    Null,
}

impl<'a> StringColumn<'a> {
    /// `column` names the column in the error for a non-string array.
    pub(crate) fn try_new(array: &'a ArrayRef, column: &str) -> Result<Self> {
        Ok(match array.data_type() {
            DataType::Utf8 => Self::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => Self::LargeUtf8(array.as_string::<i64>()),
            DataType::Utf8View => Self::Utf8View(array.as_string_view()),
            DataType::Null => Self::Null,
            DataType::Dictionary(_, _) => {
                let dictionary = array.as_any_dictionary();
                let values = StringColumn::try_new(dictionary.values(), column)?;
                // `normalized_keys` requires values; an empty dictionary has only NULL keys.
                if dictionary.values().is_empty() {
                    return Ok(Self::Null);
                }
                Self::Dictionary {
                    keys: dictionary.normalized_keys(),
                    nulls: dictionary.keys().nulls().cloned(),
                    values: Box::new(values),
                }
            }
            other => {
                return exec_err!("identity_stitch: column {column} must be a string, got {other}");
            }
        })
    }

    pub(crate) fn get(&self, row: usize) -> Option<&'a [u8]> {
        match self {
            Self::Utf8(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
            Self::LargeUtf8(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
            Self::Utf8View(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
            Self::Dictionary {
                keys,
                nulls,
                values,
            } => {
                if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    return None;
                }
                values.get(keys[row])
            }
            Self::Null => None,
        }
    }
}

/// Row access to a timestamp column of any unit, in microseconds since the epoch (UTC).
pub(crate) struct TimestampColumn<'a> {
    /// Empty for a column of type `Null`.
    values: &'a [i64],
    nulls: Option<&'a NullBuffer>,
    unit: TimeUnit,
}

impl<'a> TimestampColumn<'a> {
    pub(crate) fn try_new(array: &'a ArrayRef) -> Result<Self> {
        let (values, unit): (&[i64], TimeUnit) = match array.data_type() {
            DataType::Null => (&[], TimeUnit::Microsecond),
            DataType::Timestamp(unit, _) => {
                let values = match unit {
                    TimeUnit::Second => array
                        .as_primitive::<datafusion::arrow::datatypes::TimestampSecondType>()
                        .values(),
                    TimeUnit::Millisecond => array
                        .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                        .values(),
                    TimeUnit::Microsecond => array
                        .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                        .values(),
                    TimeUnit::Nanosecond => array
                        .as_primitive::<datafusion::arrow::datatypes::TimestampNanosecondType>()
                        .values(),
                };
                (values, *unit)
            }
            other => {
                return exec_err!("identity_stitch: column ts must be a timestamp, got {other}");
            }
        };
        Ok(Self {
            values,
            nulls: array.nulls(),
            unit,
        })
    }

    /// The timestamp of `row` in microseconds; an error for a value that does not fit (beyond
    /// ±292,000 years).
    pub(crate) fn get(&self, row: usize) -> Result<Option<i64>> {
        let Some(&value) = self.values.get(row) else {
            return Ok(None);
        };
        if self.nulls.is_some_and(|nulls| nulls.is_null(row)) {
            return Ok(None);
        }
        let micros = match self.unit {
            TimeUnit::Second => value.checked_mul(1_000_000),
            TimeUnit::Millisecond => value.checked_mul(1_000),
            TimeUnit::Microsecond => Some(value),
            TimeUnit::Nanosecond => Some(value.div_euclid(1_000)),
        };
        // i64::MAX µs is the graph's "no timestamp" marker (year 294247): out of range too.
        match micros {
            Some(micros) if micros < i64::MAX => Ok(Some(micros)),
            _ => exec_err!(
                "identity_stitch: ts value {value} ({:?}) is out of the supported range",
                self.unit
            ),
        }
    }
}

/// A small interner for low-cardinality strings (identifier types, sources): `u32` ids in
/// order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct NameInterner {
    names: Vec<String>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl NameInterner {
    /// The id of `name`, and whether it was new. Errors for bytes that are not UTF-8 (cannot
    /// happen for Arrow string arrays, which are validated).
    pub(crate) fn intern(&mut self, name: &[u8]) -> Result<(u32, bool)> {
        let hash = self.hasher.hash_one(name);
        let names = &self.names;
        if let Some(&id) = self
            .table
            .find(hash, |&id| names[id as usize].as_bytes() == name)
        {
            return Ok((id, false));
        }
        let Ok(text) = std::str::from_utf8(name) else {
            return internal_err!(
                "identity_stitch: a string column holds bytes that are not UTF-8"
            );
        };
        let id = u32::try_from(self.names.len())
            .map_err(|_| datafusion::common::DataFusionError::Internal("too many names".into()))?;
        self.names.push(text.to_string());
        let (names, hasher) = (&self.names, &self.hasher);
        self.table.insert_unique(hash, id, |&id| {
            hasher.hash_one(names[id as usize].as_bytes())
        });
        Ok((id, true))
    }

    /// The id of `name` if it was interned.
    pub(crate) fn get(&self, name: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        self.table
            .find(hash, |&id| self.names[id as usize].as_bytes() == name)
            .copied()
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Heap bytes held, for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.names.iter().map(String::capacity).sum::<usize>()
            + self.names.capacity() * size_of::<String>()
            + self.table.allocation_size()
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }
}

/// Identifiers `(type id, value bytes)` → dense node ids.
#[derive(Debug, Default)]
pub(crate) struct IdentifierInterner {
    /// Values of all nodes, concatenated; node `i` is `arena[offsets[i]..offsets[i + 1]]`.
    arena: Vec<u8>,
    offsets: Vec<usize>,
    node_type: Vec<u32>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

/// The largest number of identifiers one call can hold (node ids are `u32`, `u32::MAX` is
/// reserved as "no node").
pub(crate) const MAX_NODES: usize = u32::MAX as usize - 1;

impl IdentifierInterner {
    pub(crate) fn len(&self) -> usize {
        self.node_type.len()
    }

    /// The node id of `(id_type, value)` and whether it is new.
    pub(crate) fn intern(&mut self, id_type: u32, value: &[u8]) -> Result<(u32, bool)> {
        let hash = self.hasher.hash_one((id_type, value));
        let Self {
            arena,
            offsets,
            node_type,
            table,
            hasher,
        } = self;
        let value_of = |id: u32| {
            let i = id as usize;
            let start = if i == 0 { 0 } else { offsets[i - 1] };
            &arena[start..offsets[i]]
        };
        if let Some(&id) = table.find(hash, |&id| {
            node_type[id as usize] == id_type && value_of(id) == value
        }) {
            return Ok((id, false));
        }
        if node_type.len() >= MAX_NODES {
            return exec_err!(
                "identity_stitch: more than {MAX_NODES} distinct identifiers in one call"
            );
        }
        let id = node_type.len() as u32;
        arena.extend_from_slice(value);
        offsets.push(arena.len());
        node_type.push(id_type);
        let (arena, offsets, node_type) = (&*arena, &*offsets, &*node_type);
        table.insert_unique(hash, id, |&id| {
            let i = id as usize;
            let start = if i == 0 { 0 } else { offsets[i - 1] };
            hasher.hash_one((node_type[i], &arena[start..offsets[i]]))
        });
        Ok((id, true))
    }

    /// The node id of `(id_type, value)` if it was interned.
    pub(crate) fn get(&self, id_type: u32, value: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one((id_type, value));
        self.table
            .find(hash, |&id| {
                self.node_type[id as usize] == id_type && self.value(id) == value
            })
            .copied()
    }

    /// The value bytes of `node`.
    pub(crate) fn value(&self, node: u32) -> &[u8] {
        let i = node as usize;
        let start = if i == 0 { 0 } else { self.offsets[i - 1] };
        &self.arena[start..self.offsets[i]]
    }

    /// The type id of `node`.
    pub(crate) fn type_of(&self, node: u32) -> u32 {
        self.node_type[node as usize]
    }

    /// Heap bytes held, for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.arena.capacity()
            + self.offsets.capacity() * size_of::<usize>()
            + self.node_type.capacity() * size_of::<u32>()
            + self.table.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_harness::all_encodings;
    use datafusion::arrow::array::{TimestampNanosecondArray, TimestampSecondArray};
    use std::sync::Arc;

    #[test]
    fn interns_each_identifier_once_per_type() -> Result<()> {
        let mut interner = IdentifierInterner::default();
        assert_eq!(interner.intern(0, b"a")?, (0, true));
        assert_eq!(
            interner.intern(1, b"a")?,
            (1, true),
            "same value, other type"
        );
        assert_eq!(interner.intern(0, b"")?, (2, true));
        assert_eq!(interner.intern(0, b"a")?, (0, false));
        for i in 0..10_000u32 {
            interner.intern(2, i.to_string().as_bytes())?;
        }
        assert_eq!(interner.intern(2, b"9999")?, (10_002, false));
        assert_eq!(interner.value(1), b"a");
        assert_eq!(interner.type_of(1), 1);
        assert_eq!(interner.value(2), b"");
        assert_eq!(interner.value(10_002), b"9999");
        assert_eq!(interner.len(), 10_003);
        assert!(interner.allocated_bytes() > 10_000 * 8);
        Ok(())
    }

    #[test]
    fn reads_every_string_encoding() -> Result<()> {
        let input = [Some("x"), None, Some(""), Some("x")];
        for array in all_encodings(&input) {
            let column = StringColumn::try_new(&array, "a_value")?;
            let rows: Vec<_> = (0..4).map(|i| column.get(i)).collect();
            assert_eq!(
                rows,
                vec![Some(&b"x"[..]), None, Some(&b""[..]), Some(&b"x"[..])],
                "{}",
                array.data_type()
            );
        }
        let ints: ArrayRef = Arc::new(datafusion::arrow::array::Int32Array::from(vec![1]));
        let err = StringColumn::try_new(&ints, "a_value").err().unwrap();
        assert!(
            err.to_string().contains("column a_value must be a string"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn reads_timestamps_of_any_unit_as_micros() -> Result<()> {
        let seconds: ArrayRef = Arc::new(TimestampSecondArray::from(vec![Some(2), None]));
        let column = TimestampColumn::try_new(&seconds)?;
        assert_eq!((column.get(0)?, column.get(1)?), (Some(2_000_000), None));
        let nanos: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![-1_500]));
        assert_eq!(TimestampColumn::try_new(&nanos)?.get(0)?, Some(-2));
        let huge: ArrayRef = Arc::new(TimestampSecondArray::from(vec![i64::MAX]));
        let err = TimestampColumn::try_new(&huge)?.get(0).unwrap_err();
        assert!(
            err.to_string().contains("out of the supported range"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn name_interner_assigns_ids_in_order() -> Result<()> {
        let mut names = NameInterner::default();
        assert_eq!(names.intern(b"phone")?, (0, true));
        assert_eq!(names.intern(b"email")?, (1, true));
        assert_eq!(names.intern(b"phone")?, (0, false));
        assert_eq!(names.name(1), "email");
        assert_eq!(names.len(), 2);
        Ok(())
    }
}
