//! Interning identifiers `(id_type, id_value)` read from Arrow arrays into dense `u32` node ids.
//!
//! Values are hashed and compared as bytes straight out of the Arrow buffers; only the first
//! occurrence of an identifier copies its bytes (into one arena), so re-seen values cost a hash
//! and a lookup, never an allocation. Per-node data lives in flat vectors indexed by node id.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, LargeStringArray, StringArray, StringViewArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, exec_err, internal_err};
use hashbrown::{DefaultHashBuilder, HashTable};

use super::graph::{NO_TS, is_blank};
use crate::short_name::{ShortName, short_name_key};

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
    /// A column of type `Null` (e.g. `NULL AS b_type` in single-node rows), of that many rows.
    Null(usize),
}

impl<'a> StringColumn<'a> {
    /// `column` names the column in the error for a non-string array.
    pub(crate) fn try_new(array: &'a ArrayRef, column: &str) -> Result<Self> {
        Ok(match array.data_type() {
            DataType::Utf8 => Self::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => Self::LargeUtf8(array.as_string::<i64>()),
            DataType::Utf8View => Self::Utf8View(array.as_string_view()),
            DataType::Null => Self::Null(array.len()),
            DataType::Dictionary(_, _) => {
                let dictionary = array.as_any_dictionary();
                let values = StringColumn::try_new(dictionary.values(), column)?;
                // `normalized_keys` requires values; an empty dictionary has only NULL keys.
                if dictionary.values().is_empty() {
                    return Ok(Self::Null(array.len()));
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
            Self::Null(_) => None,
        }
    }

    /// Rows in the column.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Utf8(a) => a.len(),
            Self::LargeUtf8(a) => a.len(),
            Self::Utf8View(a) => a.len(),
            Self::Dictionary { keys, .. } => keys.len(),
            Self::Null(len) => *len,
        }
    }

    /// The bytes of every row (NULL as `None`), read in one pass per encoding: the match on the
    /// encoding is made once per batch instead of once per value.
    pub(crate) fn rows(&self) -> Vec<Option<&'a [u8]>> {
        match self {
            Self::Utf8(a) => rows_of(a.len(), a.nulls(), |row| a.value(row).as_bytes()),
            Self::LargeUtf8(a) => rows_of(a.len(), a.nulls(), |row| a.value(row).as_bytes()),
            Self::Utf8View(a) => rows_of(a.len(), a.nulls(), |row| a.value(row).as_bytes()),
            Self::Dictionary {
                keys,
                nulls,
                values,
            } => {
                if values.len() > keys.len() {
                    // A dictionary larger than the batch (shared by many batches): reading all of
                    // its values for every batch would cost more than looking up each row's.
                    return (0..keys.len()).map(|row| self.get(row)).collect();
                }
                by_key(keys, nulls.as_ref(), &values.rows(), None)
            }
            Self::Null(len) => vec![None; *len],
        }
    }
}

/// `of_value[key]` for each row's dictionary key, `none` where the key is NULL or out of range.
fn by_key<T: Copy>(keys: &[usize], nulls: Option<&NullBuffer>, of_value: &[T], none: T) -> Vec<T> {
    let value = |key: usize| of_value.get(key).copied().unwrap_or(none);
    match nulls.filter(|nulls| nulls.null_count() > 0) {
        None => keys.iter().map(|&key| value(key)).collect(),
        Some(nulls) => keys
            .iter()
            .zip(nulls.iter())
            .map(|(&key, valid)| if valid { value(key) } else { none })
            .collect(),
    }
}

/// `value` of each of `len` rows, `None` where `nulls` says NULL.
fn rows_of<'a>(
    len: usize,
    nulls: Option<&NullBuffer>,
    value: impl Fn(usize) -> &'a [u8],
) -> Vec<Option<&'a [u8]>> {
    match nulls.filter(|nulls| nulls.null_count() > 0) {
        None => (0..len).map(|row| Some(value(row))).collect(),
        Some(nulls) => (0..len)
            .map(|row| nulls.is_valid(row).then(|| value(row)))
            .collect(),
    }
}

/// The code of a row whose name is NULL (or blank, where blank names are absent) in
/// [`NameCodes::codes`].
pub(crate) const NO_NAME: u32 = u32::MAX;

/// A low-cardinality string column of one batch (identifier types, sources) as per-row codes of
/// its distinct names, so that the reader resolves each name to its id once per batch and then
/// indexes by code instead of looking up every row's bytes.
pub(crate) struct NameCodes<'a> {
    /// Per row: the index of its name in `names`, or [`NO_NAME`].
    pub codes: Vec<u32>,
    pub names: BatchNames<'a>,
}

/// The distinct names of a batch's column, each resolved to its id on first use.
pub(crate) struct BatchNames<'a> {
    names: Vec<&'a [u8]>,
    ids: Vec<Option<u32>>,
}

/// Views kept in the cache of [`NameCodes::new`]: more distinct short names than this in one
/// batch are rare and go through the numbering by bytes.
const CACHED_VIEWS: usize = 16;

impl<'a> NameCodes<'a> {
    /// Codes for every row of `column`; with `blank_is_absent`, empty and whitespace-only names
    /// are [`NO_NAME`] like NULL.
    pub(crate) fn new(column: &StringColumn<'a>, blank_is_absent: bool) -> Self {
        let mut numbering = Numbering {
            blank_is_absent,
            names: Vec::new(),
            ids: NameIds::default(),
        };
        let codes = match column {
            StringColumn::Utf8View(array) => view_codes(array, &mut numbering),
            StringColumn::Dictionary {
                keys,
                nulls,
                values,
            } if values.len() <= keys.len() => {
                // Each dictionary value once, then the rows by key.
                let value_codes: Vec<u32> = values
                    .rows()
                    .into_iter()
                    .map(|value| value.map_or(NO_NAME, |value| numbering.code(value)))
                    .collect();
                by_key(keys, nulls.as_ref(), &value_codes, NO_NAME)
            }
            StringColumn::Null(len) => vec![NO_NAME; *len],
            _ => column
                .rows()
                .into_iter()
                .map(|name| name.map_or(NO_NAME, |name| numbering.code(name)))
                .collect(),
        };
        let ids = vec![None; numbering.names.len()];
        Self {
            codes,
            names: BatchNames {
                names: numbering.names,
                ids,
            },
        }
    }
}

/// The codes of a `Utf8View` column. A name of at most 12 bytes is held whole in its view
/// (length and bytes, zero-padded), so equal views are equal names and a few compares of the
/// `u128` find its code without reading or hashing the bytes.
fn view_codes<'a>(array: &'a StringViewArray, numbering: &mut Numbering<'a>) -> Vec<u32> {
    const MAX_INLINE_LEN: u32 = 12;
    let mut cache: Vec<(u128, u32)> = Vec::with_capacity(CACHED_VIEWS);
    let mut code = |row: usize, view: u128| {
        if view as u32 > MAX_INLINE_LEN {
            return numbering.code(array.value(row).as_bytes());
        }
        if let Some(&(_, code)) = cache.iter().find(|(cached, _)| *cached == view) {
            return code;
        }
        // A view with other padding bytes for a cached name only misses the cache: the
        // numbering by bytes gives it the same code.
        let code = numbering.code(array.value(row).as_bytes());
        if cache.len() < CACHED_VIEWS {
            cache.push((view, code));
        }
        code
    };
    let views = array.views().iter().copied().enumerate();
    match array.nulls().filter(|nulls| nulls.null_count() > 0) {
        None => views.map(|(row, view)| code(row, view)).collect(),
        Some(nulls) => views
            .zip(nulls.iter())
            .map(|((row, view), valid)| if valid { code(row, view) } else { NO_NAME })
            .collect(),
    }
}

/// Numbers the distinct names of one batch's column in order of appearance.
struct Numbering<'a> {
    blank_is_absent: bool,
    names: Vec<&'a [u8]>,
    ids: NameIds<&'a [u8]>,
}

impl<'a> Numbering<'a> {
    fn code(&mut self, name: &'a [u8]) -> u32 {
        if self.blank_is_absent && is_blank(name) {
            return NO_NAME;
        }
        let names = &mut self.names;
        let numbered: Result<u32> = self.ids.get_or_insert(
            name,
            |name| name,
            |name| {
                // At most one name per row of a batch, far below `NO_NAME`.
                let code = names.len() as u32;
                names.push(name);
                Ok(code)
            },
        );
        numbered.unwrap_or(NO_NAME)
    }
}

impl BatchNames<'_> {
    /// The id of the name coded `code`, resolved (`resolve(name)`) on its first use; `None` for
    /// [`NO_NAME`].
    #[inline]
    pub(crate) fn id(
        &mut self,
        code: u32,
        resolve: impl FnOnce(&[u8]) -> Result<u32>,
    ) -> Result<Option<u32>> {
        if code == NO_NAME {
            return Ok(None);
        }
        let code = code as usize;
        match (self.ids.get_mut(code), self.names.get(code)) {
            (Some(Some(id)), _) => Ok(Some(*id)),
            (Some(slot), Some(name)) => {
                let id = resolve(name)?;
                *slot = Some(id);
                Ok(Some(id))
            }
            _ => internal_err!("identity_stitch: name code {code} out of range"),
        }
    }
}

/// Ids of names (identifier types, sources): the first few by their [`ShortName`] key, since
/// comparing two words beats hashing and comparing the bytes, every other one in a map.
#[derive(Debug)]
pub(crate) struct NameIds<K> {
    short: Vec<(ShortName, u32)>,
    other: HashMap<K, u32>,
}

impl<K> Default for NameIds<K> {
    fn default() -> Self {
        Self {
            short: Vec::new(),
            other: HashMap::new(),
        }
    }
}

/// Names kept by their key in a [`NameIds`]; more types or sources than this are rare and go
/// through its map.
const CACHED_NAMES: usize = 16;

impl<K: Borrow<[u8]> + Hash + Eq> NameIds<K> {
    /// The id of `name`; a name not seen before gets `new(name)`, kept as `key(name)`.
    pub(crate) fn get_or_insert<'n>(
        &mut self,
        name: &'n [u8],
        key: impl FnOnce(&'n [u8]) -> K,
        new: impl FnOnce(&'n [u8]) -> Result<u32>,
    ) -> Result<u32> {
        let short = short_name_key(name);
        if let Some(short) = short
            && let Some(&(_, id)) = self.short.iter().find(|(k, _)| *k == short)
        {
            return Ok(id);
        }
        let id = match self.other.get(name) {
            Some(&id) => id,
            None => {
                let id = new(name)?;
                self.other.insert(key(name), id);
                id
            }
        };
        if let Some(short) = short
            && self.short.len() < CACHED_NAMES
        {
            self.short.push((short, id));
        }
        Ok(id)
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
        // i64::MAX µs is the graph's "no timestamp" marker (year 294247): out of range too.
        match to_micros(self.unit, value) {
            Some(micros) if micros < i64::MAX => Ok(Some(micros)),
            _ => exec_err!(
                "identity_stitch: ts value {value} ({:?}) is out of the supported range",
                self.unit
            ),
        }
    }
}

/// `value` in `unit` as microseconds; `None` when it does not fit in `i64`.
fn to_micros(unit: TimeUnit, value: i64) -> Option<i64> {
    match unit {
        TimeUnit::Second => value.checked_mul(1_000_000),
        TimeUnit::Millisecond => value.checked_mul(1_000),
        TimeUnit::Microsecond => Some(value),
        TimeUnit::Nanosecond => Some(value.div_euclid(1_000)),
    }
}

impl TimestampColumn<'_> {
    /// Every one of `len` rows in microseconds, NULL as [`NO_TS`], converted in one pass; and the
    /// first row whose value is out of range, for which [`get`](Self::get) gives the error (the
    /// rows from there on are not to be used).
    pub(crate) fn micros(&self, len: usize) -> (Vec<i64>, Option<usize>) {
        if self.values.is_empty() {
            // A column of type `Null`.
            return (vec![NO_TS; len], None);
        }
        // Out of range becomes `NO_TS`, which no valid value converts to (`get` rejects it too).
        let mut micros: Vec<i64> = match self.unit {
            TimeUnit::Microsecond => self.values.to_vec(),
            unit => self
                .values
                .iter()
                .map(|&value| to_micros(unit, value).unwrap_or(NO_TS))
                .collect(),
        };
        let out_of_range = match self.nulls.filter(|nulls| nulls.null_count() > 0) {
            None => micros.iter().position(|&micros| micros == NO_TS),
            Some(nulls) => {
                let mut out_of_range = None;
                for (row, (micros, valid)) in micros.iter_mut().zip(nulls.iter()).enumerate() {
                    if !valid {
                        *micros = NO_TS;
                    } else if *micros == NO_TS && out_of_range.is_none() {
                        out_of_range = Some(row);
                    }
                }
                out_of_range
            }
        };
        (micros, out_of_range)
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
    use datafusion::arrow::array::{
        DictionaryArray, Int8Array, NullArray, TimestampMicrosecondArray,
        TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
    };
    use datafusion::arrow::datatypes::Int8Type;
    use std::sync::Arc;

    /// Every encoding of `values`, each also sliced out of a longer array (padded with other
    /// names, a NULL and blanks on both sides).
    fn encodings_and_slices(values: &[Option<&str>]) -> Vec<ArrayRef> {
        let mut padded = vec![Some("pad-before-x"), None, Some(" ")];
        padded.extend_from_slice(values);
        padded.extend([Some(""), Some("pad after, longer than twelve bytes")]);
        let sliced = all_encodings(&padded)
            .into_iter()
            .map(|array| array.slice(3, values.len()));
        all_encodings(values).into_iter().chain(sliced).collect()
    }

    /// A dictionary whose keys and values both hold NULLs, and a value no key uses.
    fn dictionary_with_null_values() -> ArrayRef {
        let keys = Int8Array::from(vec![Some(1), None, Some(0), Some(3), Some(1), Some(2)]);
        let values = StringArray::from(vec![
            Some(" "),
            Some("phone"),
            None,
            Some("email"),
            Some("unused"),
        ]);
        Arc::new(DictionaryArray::<Int8Type>::try_new(keys, Arc::new(values)).expect("valid"))
    }

    /// The names of `column`'s rows through its codes (`None` for [`NO_NAME`]), resolving each
    /// to its position in the order of first use.
    fn decode(
        column: &StringColumn<'_>,
        blank_is_absent: bool,
    ) -> Result<(Vec<Option<String>>, Vec<String>)> {
        let NameCodes { codes, mut names } = NameCodes::new(column, blank_is_absent);
        let mut resolved: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        for code in codes {
            let id = names.id(code, |name| {
                resolved.push(String::from_utf8_lossy(name).into_owned());
                Ok(resolved.len() as u32 - 1)
            })?;
            rows.push(id.map(|id| resolved[id as usize].clone()));
        }
        Ok((rows, resolved))
    }

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
    fn reads_the_rows_of_every_string_encoding_at_once() -> Result<()> {
        let input = [
            Some("x"),
            None,
            Some(""),
            Some("a longer value than a view holds"),
            Some("x"),
        ];
        let expected: Vec<Option<&[u8]>> = input.iter().map(|v| v.map(str::as_bytes)).collect();
        for array in encodings_and_slices(&input) {
            let column = StringColumn::try_new(&array, "a_value")?;
            assert_eq!(column.len(), input.len(), "{}", array.data_type());
            assert_eq!(column.rows(), expected, "{} {array:?}", array.data_type());
        }
        let dictionary = dictionary_with_null_values();
        let column = StringColumn::try_new(&dictionary, "a_value")?;
        let rows: Vec<_> = (0..6).map(|row| column.get(row)).collect();
        assert_eq!(column.rows(), rows);
        assert_eq!(
            rows[..4],
            [Some(&b"phone"[..]), None, Some(b" "), Some(b"email")]
        );
        // A dictionary larger than the batch is read row by row, with the same result.
        let large = dictionary.slice(3, 2);
        assert_eq!(StringColumn::try_new(&large, "a_value")?.rows(), rows[3..5]);

        let nulls: ArrayRef = Arc::new(NullArray::new(3));
        let column = StringColumn::try_new(&nulls, "b_value")?;
        assert_eq!((column.len(), column.rows()), (3, vec![None; 3]));
        let empty_dictionary: ArrayRef = Arc::new(DictionaryArray::<Int8Type>::try_new(
            Int8Array::from(vec![None, None]),
            Arc::new(StringArray::from(Vec::<&str>::new())),
        )?);
        let column = StringColumn::try_new(&empty_dictionary, "b_value")?;
        assert_eq!((column.len(), column.rows()), (2, vec![None; 2]));
        Ok(())
    }

    #[test]
    fn codes_the_names_of_every_string_encoding_once_per_batch() -> Result<()> {
        let long = "a type name longer than twelve bytes";
        let input = [
            Some("phone"),
            None,
            Some(" "),
            Some("email"),
            Some(long),
            Some(""),
            Some("phone"),
            Some(long),
            Some("email"),
        ];
        for array in encodings_and_slices(&input) {
            let column = StringColumn::try_new(&array, "a_type")?;
            let (rows, resolved) = decode(&column, true)?;
            let expected: Vec<Option<String>> = input
                .iter()
                .map(|v| v.filter(|v| !v.trim().is_empty()).map(str::to_string))
                .collect();
            assert_eq!(rows, expected, "{} {array:?}", array.data_type());
            assert_eq!(
                resolved,
                ["phone", "email", long],
                "each name resolved once, in row order"
            );
            // Sources: a blank name is a name.
            let (rows, resolved) = decode(&column, false)?;
            let expected: Vec<Option<String>> =
                input.iter().map(|v| v.map(str::to_string)).collect();
            assert_eq!(rows, expected, "{}", array.data_type());
            assert_eq!(resolved, ["phone", " ", "email", long, ""]);
        }
        // Dictionary NULL keys and NULL values; the unused value is never resolved.
        let dictionary = dictionary_with_null_values();
        let column = StringColumn::try_new(&dictionary, "a_type")?;
        let (rows, resolved) = decode(&column, true)?;
        let name = |v: &str| Some(v.to_string());
        assert_eq!(
            rows,
            [
                name("phone"),
                None,
                None,
                name("email"),
                name("phone"),
                None
            ]
        );
        assert_eq!(resolved, ["phone", "email"]);
        let (rows, resolved) = decode(&column, false)?;
        assert_eq!(
            rows,
            [
                name("phone"),
                None,
                name(" "),
                name("email"),
                name("phone"),
                None
            ]
        );
        assert_eq!(resolved, ["phone", " ", "email"]);

        let nulls: ArrayRef = Arc::new(NullArray::new(2));
        let (rows, resolved) = decode(&StringColumn::try_new(&nulls, "b_type")?, false)?;
        assert_eq!((rows, resolved.len()), (vec![None, None], 0));
        Ok(())
    }

    #[test]
    fn codes_views_of_more_short_names_than_are_cached() -> Result<()> {
        let names: Vec<String> = (0..3 * CACHED_VIEWS).map(|i| format!("t{i}")).collect();
        let input: Vec<Option<&str>> = names
            .iter()
            .chain(&names)
            .map(|n| Some(n.as_str()))
            .collect();
        let array: ArrayRef = Arc::new(StringViewArray::from(input.clone()));
        let (rows, resolved) = decode(&StringColumn::try_new(&array, "a_type")?, true)?;
        let expected: Vec<Option<String>> = input.iter().map(|v| v.map(str::to_string)).collect();
        assert_eq!(rows, expected);
        assert_eq!(resolved, names);
        Ok(())
    }

    #[test]
    fn converts_timestamp_columns_of_every_unit_at_once() -> Result<()> {
        let arrays: [(ArrayRef, [i64; 2]); 4] = [
            (
                Arc::new(TimestampSecondArray::from(vec![Some(-2), None, Some(3)])),
                [-2_000_000, 3_000_000],
            ),
            (
                Arc::new(TimestampMillisecondArray::from(vec![
                    Some(-2),
                    None,
                    Some(3),
                ])),
                [-2_000, 3_000],
            ),
            (
                Arc::new(TimestampMicrosecondArray::from(vec![
                    Some(-2),
                    None,
                    Some(3),
                ])),
                [-2, 3],
            ),
            (
                Arc::new(TimestampNanosecondArray::from(vec![
                    Some(-1_500),
                    None,
                    Some(3_999),
                ])),
                [-2, 3],
            ),
        ];
        for (array, [first, last]) in arrays {
            for (array, expected) in [
                (Arc::clone(&array), vec![first, NO_TS, last]),
                (array.slice(1, 2), vec![NO_TS, last]),
            ] {
                let column = TimestampColumn::try_new(&array)?;
                assert_eq!(
                    column.micros(array.len()),
                    (expected.clone(), None),
                    "{}",
                    array.data_type()
                );
                let rows = (0..array.len())
                    .map(|row| Ok(column.get(row)?.unwrap_or(NO_TS)))
                    .collect::<Result<Vec<_>>>()?;
                assert_eq!(rows, expected, "{}", array.data_type());
            }
        }
        let nulls: ArrayRef = Arc::new(NullArray::new(2));
        assert_eq!(
            TimestampColumn::try_new(&nulls)?.micros(2),
            (vec![NO_TS; 2], None)
        );
        Ok(())
    }

    #[test]
    fn finds_the_first_timestamp_out_of_range() -> Result<()> {
        let max = i64::MAX;
        // Row 1 is NULL over a value out of range, which is no error.
        let nulls = Some(NullBuffer::from(vec![true, false, true, true]));
        let arrays: [ArrayRef; 4] = [
            Arc::new(TimestampSecondArray::new(
                vec![1, max, max / 10, max].into(),
                nulls.clone(),
            )),
            Arc::new(TimestampMillisecondArray::new(
                vec![1, max, i64::MIN, 2].into(),
                nulls.clone(),
            )),
            Arc::new(TimestampMicrosecondArray::new(
                vec![1, max, max, max].into(),
                nulls.clone(),
            )),
            Arc::new(TimestampMicrosecondArray::from(vec![1, 2, max, 3])),
        ];
        for array in arrays {
            let column = TimestampColumn::try_new(&array)?;
            let (micros, out_of_range) = column.micros(4);
            assert_eq!(out_of_range, Some(2), "{array:?}");
            assert_eq!(micros[0], column.get(0)?.unwrap_or(NO_TS));
            assert_eq!(micros[1], column.get(1)?.unwrap_or(NO_TS));
            let err = column.get(2).unwrap_err();
            assert!(
                err.to_string().contains("out of the supported range"),
                "{err}"
            );
        }
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
