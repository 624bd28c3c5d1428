//! The input side shared by the data-driven attribution table functions
//! (`markov_attribution`, `shapley_attribution`): the paths query argument and the check and
//! projection of its columns, reading and aggregating its rows, and the model that
//! [`QueryInputExec`](crate::query_argument::QueryInputExec) runs over them.
//!
//! The paths query has the columns `path` (a list of channel names in time order), `conversions`,
//! `revenue` and `nulls` (non-converting occurrences of the path). The reader accepts `List` and
//! `LargeList` of `Utf8`, `LargeUtf8`, `Utf8View` or dictionary-encoded strings, and any numeric
//! type for the counts. It reads the rows through [`DecodedPaths`], interns channel names to small
//! integer ids (once per distinct dictionary value when the channels are dictionary-encoded; by a
//! packed integer key, without string compares, for short names) and aggregates the rows by path
//! as id sequences, packed into one integer each when they fit, so the models work on distinct
//! paths and the aggregation neither allocates nor compares slices per row. The input's batches
//! are dealt to one aggregating task per thread, whose sorted paths are merged at the end.
//!
//! Nothing is dropped silently: a NULL path, a NULL channel, a NULL, negative or non-finite
//! number, or revenue on a path without conversions is an execution error naming the column and
//! the path. Rows with an empty path are kept as the `(unattributed)` totals.

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Float64Array, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::{
    Column, DataFusionError, HashMap, Result, ScalarValue, exec_err, internal_err, plan_err,
};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast as cast_expr};
use futures::channel::mpsc;
use futures::stream::BoxStream;
use futures::{SinkExt, Stream, StreamExt};

use super::channel_paths::{DecodedPaths, PathColumn, is_channel_type};
use crate::query_argument::{QueryArgument, QueryArgumentTable, QueryInputOperator};
use crate::short_name::{ShortName, short_name_key};

/// The row of conversions whose path has no channel.
pub(crate) const UNATTRIBUTED: &str = "(unattributed)";

/// Names the models use for their own states and rows; a channel cannot be called that.
const RESERVED_NAMES: [&str; 4] = ["(start)", "(conversion)", "(null)", UNATTRIBUTED];

/// The input columns, in the order the operator reads them.
const PATH_COLUMN: &str = "path";
const NUMBER_COLUMNS: [&str; 3] = ["conversions", "revenue", "nulls"];

/// Marks a NULL list element in the channel ids of a batch.
pub(crate) const NULL_CHANNEL: u32 = u32::MAX;

// ------------------------------------------------------------------------------------ arguments

/// The first argument of a paths table function: a query (`SELECT …`, `WITH …`, `VALUES …`) or a
/// table name, kept as SQL text and planned only when the function's table is scanned.
pub(crate) fn paths_argument(function: &str, argument: Option<&Expr>) -> Result<QueryArgument> {
    let Some(argument) = argument else {
        return plan_err!(
            "{function}: missing the paths argument: a query or a table name with the columns path, conversions, revenue, nulls"
        );
    };
    let text = literal_string(function, "paths", argument)?;
    if text.trim().is_empty() {
        return plan_err!("{function}: the paths argument is empty");
    }
    QueryArgument::parse(function, "paths", &text)
}

/// A string literal argument.
pub(crate) fn literal_string(function: &str, argument: &str, expr: &Expr) -> Result<String> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(text))
            | ScalarValue::LargeUtf8(Some(text))
            | ScalarValue::Utf8View(Some(text)),
            _,
        ) => Ok(text.clone()),
        other => {
            plan_err!("{function}: argument '{argument}' must be a string literal, got {other}")
        }
    }
}

/// An integer literal argument.
pub(crate) fn literal_integer(function: &str, argument: &str, expr: &Expr) -> Result<i64> {
    let value = match expr {
        Expr::Literal(ScalarValue::Int8(Some(v)), _) => Some(i64::from(*v)),
        Expr::Literal(ScalarValue::Int16(Some(v)), _) => Some(i64::from(*v)),
        Expr::Literal(ScalarValue::Int32(Some(v)), _) => Some(i64::from(*v)),
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => Some(*v),
        Expr::Literal(ScalarValue::UInt8(Some(v)), _) => Some(i64::from(*v)),
        Expr::Literal(ScalarValue::UInt16(Some(v)), _) => Some(i64::from(*v)),
        Expr::Literal(ScalarValue::UInt32(Some(v)), _) => Some(i64::from(*v)),
        Expr::Literal(ScalarValue::UInt64(Some(v)), _) => i64::try_from(*v).ok(),
        _ => None,
    };
    match value {
        Some(value) => Ok(value),
        None => {
            plan_err!("{function}: argument '{argument}' must be an integer literal, got {expr}")
        }
    }
}

fn project_input_columns(function: &str, plan: LogicalPlan) -> Result<LogicalPlan> {
    let available = || {
        plan.schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find = |name: &str| -> Result<(Column, DataType)> {
        let mut found = plan
            .schema()
            .iter()
            .filter(|(_, field)| field.name() == name);
        match (found.next(), found.next()) {
            (Some((qualifier, field)), None) => Ok((
                Column::new(qualifier.cloned(), name),
                field.data_type().clone(),
            )),
            (Some(_), Some(_)) => {
                plan_err!("{function}: the paths query has more than one column named '{name}'")
            }
            (None, _) => plan_err!(
                "{function}: the paths query has no column '{name}' (it needs path, conversions, revenue, nulls; it has {})",
                available()
            ),
        }
    };

    let (path, path_type) = find(PATH_COLUMN)?;
    if !is_path_type(&path_type) {
        return plan_err!(
            "{function}: column 'path' must be a list of channel names (List or LargeList of strings), got {path_type}"
        );
    }
    let mut exprs = vec![Expr::Column(path).alias(PATH_COLUMN)];
    for name in NUMBER_COLUMNS {
        let (column, data_type) = find(name)?;
        if !data_type.is_numeric() {
            return plan_err!("{function}: column '{name}' must be numeric, got {data_type}");
        }
        exprs.push(cast_expr(Expr::Column(column), DataType::Float64).alias(name));
    }
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

fn is_path_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::List(element) | DataType::LargeList(element) => {
            is_channel_type(element.data_type())
        }
        _ => false,
    }
}

// ------------------------------------------------------------------------------ aggregated paths

/// Conversions, revenue and non-conversions of one path (or of all rows of one path).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct PathTotals {
    pub conversions: f64,
    pub revenue: f64,
    pub nulls: f64,
}

impl PathTotals {
    fn add(&mut self, other: PathTotals) {
        self.conversions += other.conversions;
        self.revenue += other.revenue;
        self.nulls += other.nulls;
    }
}

/// One distinct non-empty path with its totals; channels are indexes into
/// [`AggregatedPaths::channels`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AggregatedPath {
    pub channels: Box<[u32]>,
    pub totals: PathTotals,
}

/// The paths input, aggregated by path.
///
/// Channels are numbered in name order and paths sorted by channel numbers, so every model sees
/// the same input in the same order whatever the partitioning of the query that produced it.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct AggregatedPaths {
    pub channels: Vec<String>,
    pub paths: Vec<AggregatedPath>,
    /// Rows whose path is empty: conversions no channel touched.
    pub unattributed: PathTotals,
}

impl AggregatedPaths {
    /// Total conversions and revenue of non-empty paths.
    pub(crate) fn attributable_totals(&self) -> PathTotals {
        let mut totals = PathTotals::default();
        for path in &self.paths {
            totals.add(path.totals);
        }
        totals
    }

    /// Aggregates `(channel names, totals)` rows with the validation of the SQL input; used by
    /// the models' unit tests.
    #[cfg(test)]
    pub(crate) fn from_rows<P: AsRef<[S]>, S: AsRef<str>>(
        function: &str,
        rows: &[(P, PathTotals)],
    ) -> Result<Self> {
        let mut aggregator = PathAggregator::new(function);
        let mut ids = Vec::new();
        for (names, totals) in rows {
            ids.clear();
            for name in names.as_ref() {
                ids.push(aggregator.channels.intern(function, name.as_ref())?);
            }
            aggregator.add_path(&ids, *totals)?;
        }
        Ok(aggregator.finish())
    }

    /// [`Self::from_rows`] with each row's totals given as `conversions, revenue, nulls`.
    #[cfg(test)]
    pub(crate) fn from_numbers(function: &str, rows: &[(&[&str], f64, f64, f64)]) -> Result<Self> {
        let rows: Vec<(&[&str], PathTotals)> = rows
            .iter()
            .map(|&(path, conversions, revenue, nulls)| {
                (
                    path,
                    PathTotals {
                        conversions,
                        revenue,
                        nulls,
                    },
                )
            })
            .collect();
        Self::from_rows(function, &rows)
    }
}

/// Channel names interned to dense ids in order of first appearance; shared by the paths input
/// and `attribution_channel_credit`.
#[derive(Debug)]
pub(crate) struct ChannelDictionary {
    /// Names of at most 16 bytes by their [`ShortName`]: a lookup hashes one
    /// integer and compares no string.
    short_ids: HashMap<ShortName, u32, BuildHasherDefault<PackedKeyHasher>>,
    /// Longer names.
    ids: HashMap<Box<str>, u32>,
    names: Vec<String>,
    /// Names the caller uses for its own rows: interning one is an error.
    reserved: &'static [&'static str],
    /// Estimated heap bytes, for the memory pool.
    bytes: usize,
    /// Scratch of [`Self::map_dictionary`]: the channel id of each distinct value of a dictionary
    /// (`UNSEEN` until used).
    dictionary_ids: Vec<u32>,
}

impl ChannelDictionary {
    /// An empty dictionary that refuses the names in `reserved`.
    pub(crate) fn new(reserved: &'static [&'static str]) -> Self {
        Self {
            short_ids: HashMap::default(),
            ids: HashMap::new(),
            names: Vec::new(),
            reserved,
            bytes: 0,
            dictionary_ids: Vec::new(),
        }
    }

    /// The interned names; id `i` is `names()[i]`.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Estimated heap bytes, for the memory pool.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes + self.dictionary_ids.capacity() * size_of::<u32>()
    }

    /// The id of `name`, numbering it if it is new.
    pub(crate) fn intern(&mut self, function: &str, name: &str) -> Result<u32> {
        match short_name_key(name.as_bytes()) {
            Some(key) => {
                if let Some(&id) = self.short_ids.get(&key) {
                    return Ok(id);
                }
                let id = self.insert(function, name)?;
                self.short_ids.insert(key, id);
                Ok(id)
            }
            None => {
                if let Some(&id) = self.ids.get(name) {
                    return Ok(id);
                }
                let id = self.insert(function, name)?;
                self.ids.insert(name.into(), id);
                Ok(id)
            }
        }
    }

    /// Numbers a name seen for the first time.
    fn insert(&mut self, function: &str, name: &str) -> Result<u32> {
        if self.reserved.contains(&name) {
            return exec_err!(
                "{function}: '{name}' cannot be a channel name: the model uses it for its own rows"
            );
        }
        let Some(id) = u32::try_from(self.names.len()).ok().filter(|&id| id < USED) else {
            return exec_err!("{function}: more than {USED} distinct channels");
        };
        self.names.push(name.to_string());
        self.bytes += BYTES_PER_CHANNEL + 2 * name.len();
        Ok(id)
    }

    /// The channel id of each distinct value of the dictionary of `paths` that `keys` (its keys
    /// without NULLs, as many as the caller reads) use, [`UNSEEN`] for the others: the values
    /// used are marked, then only those are interned (two tight loops, no string per touch). A
    /// key past the dictionary is a NULL channel.
    pub(crate) fn map_dictionary(
        &mut self,
        function: &str,
        paths: &PathColumn<'_>,
        keys: &[u32],
    ) -> Result<&[u32]> {
        self.map_marked_values(function, paths, |table| mark_used_keys(table, keys))
    }

    /// Like [`Self::map_dictionary`], for a caller that knows the values used some other way:
    /// `mark` sets the entry of each value used to [`USED`] (and leaves the others).
    pub(crate) fn map_marked_values(
        &mut self,
        function: &str,
        paths: &PathColumn<'_>,
        mark: impl FnOnce(&mut [u32]),
    ) -> Result<&[u32]> {
        let table = &mut self.dictionary_ids;
        table.clear();
        table.resize(paths.distinct_channel_count(), UNSEEN);
        mark(table);
        for key in 0..table.len() {
            if self.dictionary_ids[key] == USED {
                self.dictionary_ids[key] = match paths.distinct_channel(key as u32) {
                    Some(name) => self.intern(function, name)?,
                    None => NULL_CHANNEL,
                };
            }
        }
        Ok(&self.dictionary_ids)
    }

    /// Replaces the contents of `ids` with the channel id of every list value the rows of
    /// `paths` use ([`PathColumn::channels_used`]; [`NULL_CHANNEL`] for a NULL channel),
    /// interning each distinct dictionary value once when the channels are dictionary-encoded.
    pub(crate) fn map_channels(
        &mut self,
        function: &str,
        paths: &PathColumn<'_>,
        ids: &mut Vec<u32>,
    ) -> Result<()> {
        let used = paths.channels_used();
        ids.clear();
        ids.reserve(used.len());
        match paths.channel_keys() {
            Some(keys) if keys.null_count() == 0 => {
                // No NULL channel: map every touch by a lookup in the table of the distinct
                // values the rows use.
                let keys = &keys.values()[used];
                let table = self.map_dictionary(function, paths, keys)?;
                ids.extend(
                    keys.iter()
                        .map(|&key| table.get(key as usize).copied().unwrap_or(NULL_CHANNEL)),
                );
            }
            Some(keys) => {
                let mut dictionary_ids = std::mem::take(&mut self.dictionary_ids);
                dictionary_ids.clear();
                for index in used {
                    if keys.is_null(index) {
                        ids.push(NULL_CHANNEL);
                        continue;
                    }
                    let key = keys.value(index);
                    let slot = key as usize;
                    if slot >= dictionary_ids.len() {
                        dictionary_ids.resize(slot + 1, UNSEEN);
                    }
                    if dictionary_ids[slot] == UNSEEN {
                        dictionary_ids[slot] = match paths.distinct_channel(key) {
                            Some(name) => self.intern(function, name)?,
                            None => NULL_CHANNEL,
                        };
                    }
                    ids.push(dictionary_ids[slot]);
                }
                self.dictionary_ids = dictionary_ids;
            }
            None => {
                for index in used {
                    ids.push(match paths.channel(index) {
                        Some(name) => self.intern(function, name)?,
                        None => NULL_CHANNEL,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Sets the entry of every key of `keys` in `table` to [`USED`] (a key past it is a NULL
/// channel).
pub(crate) fn mark_used_keys(table: &mut [u32], keys: &[u32]) {
    for &key in keys {
        if let Some(slot) = table.get_mut(key as usize) {
            *slot = USED;
        }
    }
}

/// A hash map keyed by [`PackedPath`]s, with the multiply-fold hash of [`PackedKeyHasher`]: the
/// keys are channel ids, not attacker-chosen strings, and hashing them is a large part of the
/// cost of aggregating paths.
type PackedMap<V> = HashMap<u128, V, BuildHasherDefault<PackedKeyHasher>>;

/// The hasher of [`PackedMap`] and of [`ShortName`]s: one folded 64 × 64 → 128-bit multiply per
/// word of the key.
#[derive(Debug, Default, Clone, Copy)]
struct PackedKeyHasher(u64);

impl PackedKeyHasher {
    const SEED: u64 = 0x243f_6a88_85a3_08d3;
    const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

    fn fold(a: u64, b: u64) -> u64 {
        let product = u128::from(a) * u128::from(b);
        (product as u64) ^ ((product >> 64) as u64)
    }
}

impl Hasher for PackedKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only integer keys use this hasher; bytes are folded in 8 at a time for completeness.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = Self::fold(self.0 ^ value ^ Self::SEED, Self::MULTIPLIER);
    }

    fn write_u128(&mut self, value: u128) {
        let high = Self::fold((value >> 64) as u64 ^ Self::SEED, Self::MULTIPLIER);
        self.0 = Self::fold(self.0 ^ high ^ value as u64, Self::MULTIPLIER);
    }
}

/// A path of at most [`PackedPath::CAPACITY`] channels with ids below 255, packed into an
/// integer: channel `i` is the byte `id + 1` at position `i` from the most significant end, the
/// rest is zero. Distinct paths give distinct keys, and keys compare like the channel slices
/// (a prefix sorts first), so the packed paths need no allocation per path, and hashing,
/// comparing and sorting them touches one integer each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PackedPath(u128);

impl PackedPath {
    const CAPACITY: usize = 16;

    fn pack(path: &[u32]) -> Option<Self> {
        if path.len() > Self::CAPACITY {
            return None;
        }
        let mut key = 0u128;
        for (position, &id) in path.iter().enumerate() {
            if id >= 255 {
                return None;
            }
            key |= u128::from(id + 1) << (8 * (Self::CAPACITY - 1 - position));
        }
        Some(Self(key))
    }

    /// The channel ids, into `out`.
    fn unpack(self, out: &mut Vec<u32>) {
        out.clear();
        for byte in self.0.to_be_bytes() {
            if byte == 0 {
                break;
            }
            out.push(u32::from(byte) - 1);
        }
    }
}

/// Reads batches of `(path, conversions, revenue, nulls)` into [`AggregatedPaths`].
struct PathAggregator<'a> {
    function: &'a str,
    channels: ChannelDictionary,
    /// The paths [`PackedPath`] can hold (nearly all: short, over few channels).
    packed: PackedMap<PathTotals>,
    /// The other paths.
    long: HashMap<Box<[u32]>, PathTotals>,
    unattributed: PathTotals,
    /// Estimated heap bytes of the channels and paths held, for the memory pool.
    bytes: usize,
    /// Scratch: the channel id of each list value of the batch.
    ids: Vec<u32>,
}

/// Marks a dictionary value not yet mapped to a channel id.
pub(crate) const UNSEEN: u32 = u32::MAX - 1;
/// Marks a dictionary value the rows use, before it is mapped to a channel id; no channel id is
/// this large (see [`ChannelDictionary::insert`]).
pub(crate) const USED: u32 = u32::MAX - 2;

impl<'a> PathAggregator<'a> {
    fn new(function: &'a str) -> Self {
        Self {
            function,
            channels: ChannelDictionary::new(&RESERVED_NAMES),
            packed: PackedMap::default(),
            long: HashMap::new(),
            unattributed: PathTotals::default(),
            bytes: 0,
            ids: Vec::new(),
        }
    }

    fn add_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let [path, conversions, revenue, nulls] = batch.columns() else {
            return internal_err!("{}: expected 4 input columns", self.function);
        };
        let numbers =
            [conversions, revenue, nulls].map(|column| column.as_primitive_opt::<Float64Type>());
        let [Some(conversions), Some(revenue), Some(nulls)] = numbers else {
            return internal_err!("{}: the number columns must be Float64", self.function);
        };
        let numbers = [conversions, revenue, nulls];
        let decoded = DecodedPaths::try_new(self.function, path)?;
        let paths = decoded.column();
        let mut ids = std::mem::take(&mut self.ids);
        self.channels
            .map_channels(self.function, &paths, &mut ids)?;
        let result = self.add_rows(&paths, &ids, numbers);
        self.ids = ids;
        result
    }

    /// Adds the rows of a batch whose list values have the channel `ids`.
    fn add_rows(
        &mut self,
        paths: &PathColumn<'_>,
        ids: &[u32],
        numbers: [&Float64Array; 3],
    ) -> Result<()> {
        let first = paths.channels_used().start;
        for row in 0..paths.len() {
            let Some(range) = paths.channel_range(row) else {
                return exec_err!(
                    "{}: column 'path' is NULL (use an empty list for conversions without touches)",
                    self.function
                );
            };
            let path = &ids[range.start - first..range.end - first];
            if let Some(position) = path.iter().position(|&id| id == NULL_CHANNEL) {
                return exec_err!(
                    "{}: column 'path' has a NULL channel at position {} in {}",
                    self.function,
                    position + 1,
                    self.describe(path)
                );
            }
            let mut totals = [0.0; 3];
            for ((value, column), name) in totals.iter_mut().zip(numbers).zip(NUMBER_COLUMNS) {
                if column.is_null(row) {
                    return exec_err!(
                        "{}: column '{name}' is NULL for path {}",
                        self.function,
                        self.describe(path)
                    );
                }
                *value = column.value(row);
                if !value.is_finite() || *value < 0.0 {
                    return exec_err!(
                        "{}: column '{name}' must be a finite number >= 0, got {value} for path {}",
                        self.function,
                        self.describe(path)
                    );
                }
            }
            let [conversions, revenue, nulls] = totals;
            self.add_path(
                path,
                PathTotals {
                    conversions,
                    revenue,
                    nulls,
                },
            )?;
        }
        Ok(())
    }

    fn add_path(&mut self, path: &[u32], totals: PathTotals) -> Result<()> {
        if totals.revenue > 0.0 && totals.conversions == 0.0 {
            return exec_err!(
                "{}: path {} has revenue {} but no conversions: revenue is credited per conversion",
                self.function,
                self.describe(path),
                totals.revenue
            );
        }
        if path.is_empty() {
            self.unattributed.add(totals);
            return Ok(());
        }
        if let Some(PackedPath(key)) = PackedPath::pack(path) {
            match self.packed.get_mut(&key) {
                Some(existing) => existing.add(totals),
                None => {
                    self.packed.insert(key, totals);
                    self.bytes += BYTES_PER_PACKED_PATH;
                }
            }
            return Ok(());
        }
        match self.long.get_mut(path) {
            Some(existing) => existing.add(totals),
            None => {
                self.long.insert(path.into(), totals);
                self.bytes += BYTES_PER_PATH + size_of_val(path);
            }
        }
        Ok(())
    }

    /// A path for error messages: `[a, b, NULL]`.
    fn describe(&self, path: &[u32]) -> String {
        let names: Vec<&str> = path
            .iter()
            .map(|&id| {
                self.channels
                    .names
                    .get(id as usize)
                    .map_or("NULL", String::as_str)
            })
            .collect();
        format!("[{}]", names.join(", "))
    }

    /// Renumbers channels in name order and sorts the paths (see [`AggregatedPaths`]).
    fn finish(self) -> AggregatedPaths {
        let mut order: Vec<u32> = (0..self.channels.names.len() as u32).collect();
        order.sort_by(|&a, &b| {
            self.channels.names[a as usize].cmp(&self.channels.names[b as usize])
        });
        let mut renumbered = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            renumbered[old as usize] = new as u32;
        }
        let mut names = self.channels.names;
        let channels = order
            .iter()
            .map(|&old| std::mem::take(&mut names[old as usize]))
            .collect();

        let mut scratch = Vec::with_capacity(PackedPath::CAPACITY);
        let mut long: Vec<(Box<[u32]>, PathTotals)> = self
            .long
            .into_iter()
            .map(|(mut path, totals)| {
                for id in path.iter_mut() {
                    *id = renumbered[*id as usize];
                }
                (path, totals)
            })
            .collect();
        // Renumbered ids stay below 255 when there are at most 255 channels: the packed paths
        // then sort as integers; otherwise they join the long ones.
        let mut packed: Vec<(PackedPath, PathTotals)> = Vec::with_capacity(self.packed.len());
        for (key, totals) in self.packed {
            PackedPath(key).unpack(&mut scratch);
            for id in scratch.iter_mut() {
                *id = renumbered[*id as usize];
            }
            match PackedPath::pack(&scratch) {
                Some(path) => packed.push((path, totals)),
                None => long.push((scratch.as_slice().into(), totals)),
            }
        }
        packed.sort_unstable_by_key(|&(path, _)| path);
        long.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        // Merge the two sorted lists.
        let mut paths = Vec::with_capacity(packed.len() + long.len());
        let mut long = long.into_iter().peekable();
        for (path, totals) in packed {
            path.unpack(&mut scratch);
            while let Some((channels, totals)) =
                long.next_if(|(channels, _)| channels.as_ref() < scratch.as_slice())
            {
                paths.push(AggregatedPath { channels, totals });
            }
            paths.push(AggregatedPath {
                channels: scratch.as_slice().into(),
                totals,
            });
        }
        paths.extend(long.map(|(channels, totals)| AggregatedPath { channels, totals }));
        AggregatedPaths {
            channels,
            paths,
            unattributed: self.unattributed,
        }
    }
}

/// Memory accounted per distinct path besides its channel ids: the map entry and the boxed slice.
const BYTES_PER_PATH: usize = 64;
/// Memory accounted per distinct packed path: the map entry (key, totals, control byte) and the
/// boxed slice the output makes of it.
const BYTES_PER_PACKED_PATH: usize = 96;
/// Memory accounted per channel besides its name (stored twice): map entry and `String`s.
const BYTES_PER_CHANNEL: usize = 80;

// --------------------------------------------------------------------------------- channel credit

/// One channel's credit in a model's per-channel output.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ChannelCredit {
    pub conversions: f64,
    pub revenue: f64,
    /// The model's own measure (removal effect, share); NULL when undefined.
    pub measure: Option<f64>,
}

/// `channel, conversions, revenue, <measure>`.
pub(crate) fn credits_schema(measure: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("channel", DataType::Utf8, false),
        Field::new("conversions", DataType::Float64, false),
        Field::new("revenue", DataType::Float64, false),
        Field::new(measure, DataType::Float64, true),
    ]))
}

/// One row per channel (in name order, `credits[i]` for `paths.channels[i]`), then the
/// `(unattributed)` row when conversions had no channel.
pub(crate) fn credits_batch(
    schema: &SchemaRef,
    paths: &AggregatedPaths,
    credits: &[ChannelCredit],
    unattributed_measure: Option<f64>,
) -> Result<RecordBatch> {
    if credits.len() != paths.channels.len() {
        return internal_err!(
            "{} credits for {} channels",
            credits.len(),
            paths.channels.len()
        );
    }
    let mut rows: Vec<(&str, ChannelCredit)> = paths
        .channels
        .iter()
        .map(String::as_str)
        .zip(credits.iter().copied())
        .collect();
    if paths.unattributed.conversions > 0.0 {
        rows.push((
            UNATTRIBUTED,
            ChannelCredit {
                conversions: paths.unattributed.conversions,
                revenue: paths.unattributed.revenue,
                measure: unattributed_measure,
            },
        ));
    }
    let mut channel = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
    for (name, _) in &rows {
        channel.append_value(name);
    }
    let conversions: Float64Array = rows.iter().map(|(_, c)| Some(c.conversions)).collect();
    let revenue: Float64Array = rows.iter().map(|(_, c)| Some(c.revenue)).collect();
    let measure: Float64Array = rows.iter().map(|(_, c)| c.measure).collect();
    Ok(RecordBatch::try_new(
        Arc::clone(schema),
        vec![
            Arc::new(channel.finish()),
            Arc::new(conversions),
            Arc::new(revenue),
            Arc::new(measure),
        ],
    )?)
}

// --------------------------------------------------------------------------- table and operator

/// A data-driven model over aggregated paths.
pub(crate) trait PathsModel: fmt::Debug + Send + Sync + 'static {
    /// The SQL function, for messages.
    fn function(&self) -> &'static str;
    /// The model's parameters for `EXPLAIN`, e.g. `order=2, output=credits`.
    fn parameters(&self) -> String;
    /// The output schema; fixed by the arguments.
    fn schema(&self) -> SchemaRef;
    /// Computes the output from the whole input.
    fn attribute(&self, paths: &AggregatedPaths) -> Result<RecordBatch>;
}

/// The table a paths table function returns: planning of the paths query waits for `scan`.
pub(crate) type PathsModelTable = QueryArgumentTable<dyn PathsModel>;

/// Runs a [`PathsModel`] over its whole input and emits the model's output.
impl QueryInputOperator for dyn PathsModel {
    fn function(&self) -> &'static str {
        PathsModel::function(self)
    }

    fn name(&self) -> &'static str {
        "PathsModelExec"
    }

    fn fmt_parameters(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}({})", PathsModel::function(self), self.parameters())
    }

    fn schema(&self) -> SchemaRef {
        PathsModel::schema(self)
    }

    /// Projects the query onto the four input columns, with the numbers cast to `Float64`.
    fn prepare_input(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        project_input_columns(PathsModel::function(self), plan)
    }

    fn execute(
        self: Arc<Self>,
        input: SendableRecordBatchStream,
        projection: Option<Vec<usize>>,
        context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        let function = PathsModel::function(self.as_ref());
        let threads = context.session_config().target_partitions();
        let reservation = MemoryConsumer::new(format!("PathsModelExec[{function}]"))
            .register(context.memory_pool());
        Ok(futures::stream::once(async move {
            // The reservations live until the output is built: the paths are held until then.
            let (paths, reservations) =
                aggregate_input(function, input, threads, &reservation).await?;
            let batch = self.attribute(&paths)?;
            drop(reservations);
            match &projection {
                Some(indices) => Ok(batch.project(indices)?),
                None => Ok(batch),
            }
        })
        .boxed())
    }
}

/// Aggregates the input's batches, dealt in turn to `threads` tasks (aggregation is most of the
/// work over distinct paths, and the input of one Parquet row group is one partition), then
/// merges the tasks' paths. Returns the reservations that hold the paths' memory.
async fn aggregate_input(
    function: &'static str,
    mut input: SendableRecordBatchStream,
    threads: usize,
    reservation: &MemoryReservation,
) -> Result<(AggregatedPaths, Vec<MemoryReservation>)> {
    let (senders, tasks): (Vec<_>, Vec<_>) = (0..threads.max(1))
        .map(|_| {
            // One batch in flight per task: the reader runs at most a batch ahead of each.
            let (sender, batches) = mpsc::channel::<RecordBatch>(1);
            let own = reservation.new_empty();
            let task = SpawnedTask::spawn(async move {
                let paths = aggregate_batches(function, batches, &own).await?;
                Ok::<_, DataFusionError>((paths, own))
            });
            let joined = async move {
                task.join_unwind()
                    .await
                    .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))?
            };
            (sender, joined)
        })
        .unzip();
    // An input error ends here and drops (aborts) the tasks. A task that failed closed its
    // channel, so the dealing stopped: its error comes from the join.
    deal_batches(&mut input, senders).await?;
    let (parts, reservations) = futures::future::try_join_all(tasks)
        .await?
        .into_iter()
        .unzip();
    Ok((merge_parts(function, parts)?, reservations))
}

/// Sends the input's batches to the senders in turn; stops early when a task is gone.
async fn deal_batches(
    input: &mut SendableRecordBatchStream,
    mut senders: Vec<mpsc::Sender<RecordBatch>>,
) -> Result<()> {
    let mut turns = (0..senders.len()).cycle();
    while let Some(batch) = input.next().await {
        let Some(sender) = turns.next().and_then(|turn| senders.get_mut(turn)) else {
            return internal_err!("no task to aggregate the paths");
        };
        if sender.send(batch?).await.is_err() {
            break;
        }
    }
    Ok(())
}

async fn aggregate_batches(
    function: &str,
    mut batches: impl Stream<Item = RecordBatch> + Unpin,
    reservation: &MemoryReservation,
) -> Result<AggregatedPaths> {
    let mut aggregator = PathAggregator::new(function);
    while let Some(batch) = batches.next().await {
        aggregator.add_batch(&batch)?;
        reservation.try_resize(aggregator.bytes + aggregator.channels.bytes())?;
    }
    Ok(aggregator.finish())
}

/// Merges the aggregated paths of several parts of the input into the [`AggregatedPaths`] of all
/// their rows: the channels are the union of theirs, in name order, and the totals of a path in
/// several parts are summed in the order of the parts.
fn merge_parts(function: &str, parts: Vec<AggregatedPaths>) -> Result<AggregatedPaths> {
    let mut channels: Vec<String> = parts
        .iter()
        .flat_map(|part| part.channels.iter().cloned())
        .collect();
    channels.sort_unstable();
    channels.dedup();
    let mut merged = AggregatedPaths {
        channels,
        ..Default::default()
    };
    for mut part in parts {
        let renumbered = part
            .channels
            .iter()
            .map(|name| match merged.channels.binary_search(name) {
                Ok(id) => Ok(id as u32),
                Err(_) => internal_err!("{function}: channel '{name}' lost merging the paths"),
            })
            .collect::<Result<Vec<u32>>>()?;
        // Both numberings follow name order, so the part's paths stay sorted.
        for path in &mut part.paths {
            for id in path.channels.iter_mut() {
                *id = renumbered[*id as usize];
            }
        }
        merged.paths = merge_sorted_paths(std::mem::take(&mut merged.paths), part.paths);
        merged.unattributed.add(part.unattributed);
    }
    Ok(merged)
}

/// Merges two lists of paths sorted by channels into one, summing the totals of equal paths.
fn merge_sorted_paths(
    left: Vec<AggregatedPath>,
    right: Vec<AggregatedPath>,
) -> Vec<AggregatedPath> {
    if left.is_empty() {
        return right;
    }
    let mut merged = Vec::with_capacity(left.len() + right.len());
    let mut right = right.into_iter().peekable();
    for mut path in left {
        while let Some(before) = right.next_if(|other| other.channels < path.channels) {
            merged.push(before);
        }
        if let Some(same) = right.next_if(|other| other.channels == path.channels) {
            path.totals.add(same.totals);
        }
        merged.push(path);
    }
    merged.extend(right);
    merged
}

/// The schema of `from_state, to_state, probability` outputs.
pub(crate) static TRANSITIONS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("from_state", DataType::Utf8, false),
        Field::new("to_state", DataType::Utf8, false),
        Field::new("probability", DataType::Float64, false),
    ]))
});

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        ArrayRef, DictionaryArray, LargeListArray, LargeStringArray, ListArray, StringViewArray,
    };
    use datafusion::arrow::buffer::OffsetBuffer;
    use datafusion::arrow::datatypes::Int32Type;

    fn totals(conversions: f64, revenue: f64, nulls: f64) -> PathTotals {
        PathTotals {
            conversions,
            revenue,
            nulls,
        }
    }

    /// `[b, a]`, `[]`, `[a]`, `[b, a]` as a List over `values`.
    fn batch_with_values(values: ArrayRef, large: bool) -> RecordBatch {
        let offsets = [0usize, 2, 2, 3, 5];
        let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
        let path: ArrayRef = if large {
            Arc::new(LargeListArray::new(
                field,
                OffsetBuffer::new(offsets.iter().map(|&o| o as i64).collect()),
                values,
                None,
            ))
        } else {
            Arc::new(ListArray::new(
                field,
                OffsetBuffer::new(offsets.iter().map(|&o| o as i32).collect()),
                values,
                None,
            ))
        };
        let number = |v: [f64; 4]| -> ArrayRef { Arc::new(Float64Array::from(v.to_vec())) };
        RecordBatch::try_from_iter(vec![
            ("path", path),
            ("conversions", number([1.0, 2.0, 0.0, 0.5])),
            ("revenue", number([10.0, 7.0, 0.0, 5.0])),
            ("nulls", number([3.0, 0.0, 4.0, 1.0])),
        ])
        .unwrap()
    }

    fn aggregate(batch: &RecordBatch) -> Result<AggregatedPaths> {
        let mut aggregator = PathAggregator::new("f");
        aggregator.add_batch(batch)?;
        Ok(aggregator.finish())
    }

    #[test]
    fn reads_every_list_and_string_encoding_the_same() -> Result<()> {
        let names = ["b", "a", "a", "b", "a"];
        let dictionary: DictionaryArray<Int32Type> = names.into_iter().collect();
        let encodings: Vec<ArrayRef> = vec![
            Arc::new(datafusion::arrow::array::StringArray::from(names.to_vec())),
            Arc::new(LargeStringArray::from(names.to_vec())),
            Arc::new(StringViewArray::from(names.to_vec())),
            Arc::new(dictionary),
        ];
        let expected = AggregatedPaths {
            channels: vec!["a".into(), "b".into()],
            paths: vec![
                AggregatedPath {
                    channels: vec![0].into(),
                    totals: totals(0.0, 0.0, 4.0),
                },
                AggregatedPath {
                    channels: vec![1, 0].into(),
                    totals: totals(1.5, 15.0, 4.0),
                },
            ],
            unattributed: totals(2.0, 7.0, 0.0),
        };
        for values in encodings {
            for large in [false, true] {
                let data_type = values.data_type().clone();
                let paths = aggregate(&batch_with_values(Arc::clone(&values), large))?;
                assert_eq!(paths, expected, "{data_type} large={large}");
            }
        }
        Ok(())
    }

    #[test]
    fn dictionary_values_are_interned_once_and_unused_ones_ignored() -> Result<()> {
        // Dictionary values: "unused" is referenced by no key; key 3 points at a NULL value.
        let values: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec![
            Some("b"),
            Some("unused"),
            Some("a"),
            None,
        ]));
        let keys = datafusion::arrow::array::Int8Array::from(vec![0, 2, 2, 0, 2]);
        let dictionary: ArrayRef = Arc::new(DictionaryArray::try_new(keys, values.clone())?);
        let paths = aggregate(&batch_with_values(dictionary, false))?;
        assert_eq!(paths.channels, vec!["a".to_string(), "b".to_string()]);

        // A NULL key, and a key pointing at a NULL dictionary value.
        let null_key = vec![Some(0), None, Some(2), Some(0), Some(2)];
        let null_value = vec![Some(0), Some(3), Some(2), Some(0), Some(2)];
        for keys in [null_key, null_value] {
            let keys = datafusion::arrow::array::Int8Array::from(keys);
            let dictionary: ArrayRef = Arc::new(DictionaryArray::try_new(keys, values.clone())?);
            let err = aggregate(&batch_with_values(dictionary, false))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("NULL channel at position 2 in [b, NULL]"),
                "{err}"
            );
        }
        Ok(())
    }

    /// The aggregation by a plain map of channel-name paths, numbered and sorted afterwards.
    fn reference_aggregation(rows: &[(Vec<String>, PathTotals)]) -> AggregatedPaths {
        let mut by_path: std::collections::BTreeMap<&[String], PathTotals> = Default::default();
        let mut unattributed = PathTotals::default();
        for (path, row_totals) in rows {
            if path.is_empty() {
                unattributed.add(*row_totals);
            } else {
                by_path.entry(path.as_slice()).or_default().add(*row_totals);
            }
        }
        let mut channels: Vec<String> = rows.iter().flat_map(|(p, _)| p.clone()).collect();
        channels.sort();
        channels.dedup();
        let id = |name: &String| channels.binary_search(name).unwrap() as u32;
        let mut paths: Vec<AggregatedPath> = by_path
            .into_iter()
            .map(|(path, totals)| AggregatedPath {
                channels: path.iter().map(id).collect(),
                totals,
            })
            .collect();
        paths.sort_by(|a, b| a.channels.cmp(&b.channels));
        AggregatedPaths {
            channels: channels.clone(),
            paths,
            unattributed,
        }
    }

    #[test]
    fn packed_and_long_paths_aggregate_like_a_plain_map() -> Result<()> {
        // Few channels and short paths (all packed), then up to 300 channels (ids past 255) and
        // paths up to 20 long (past the packed capacity): both kinds, merged in order.
        for (channel_count, max_len) in [(4u64, 5u64), (300, 20), (20, 40)] {
            let mut next = random_numbers(channel_count);
            let rows = random_rows(&mut next, 3000, channel_count, max_len);
            assert_eq!(
                AggregatedPaths::from_rows("f", &rows)?,
                reference_aggregation(&rows),
                "{channel_count} channels"
            );
        }
        Ok(())
    }

    /// A deterministic stream of numbers below the bound asked for.
    fn random_numbers(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
        move |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        }
    }

    /// `count` rows of paths up to `max_len` long over `channel_count` channels; the revenues
    /// are quarters, so that sums in any order are exact.
    fn random_rows(
        next: &mut impl FnMut(u64) -> u64,
        count: usize,
        channel_count: u64,
        max_len: u64,
    ) -> Vec<(Vec<String>, PathTotals)> {
        (0..count)
            .map(|_| {
                let len = next(max_len + 1);
                let path = (0..len)
                    .map(|_| format!("channel {}", next(channel_count)))
                    .collect();
                let conversions = next(3) as f64;
                let revenue = if conversions > 0.0 {
                    next(400) as f64 / 4.0
                } else {
                    0.0
                };
                (path, totals(conversions, revenue, next(4) as f64))
            })
            .collect()
    }

    #[test]
    fn parts_merge_into_the_aggregation_of_all_rows() -> Result<()> {
        // Paths packed and long; rows dealt to partitions unevenly, so that partitions see
        // different channels and share some paths; the first partition gets no row.
        for (channel_count, max_len, partitions) in
            [(4u64, 5u64, 2u64), (300, 20, 3), (20, 40, 5), (6, 3, 1)]
        {
            let mut next = random_numbers(channel_count * partitions);
            let rows = random_rows(&mut next, 3000, channel_count, max_len);
            let mut parts = vec![Vec::new(); partitions as usize];
            for row in &rows {
                let part = next(partitions * partitions).min(partitions - 1);
                parts[part as usize].push(row.clone());
            }
            parts.insert(0, Vec::new());
            let parts = parts
                .iter()
                .map(|rows| AggregatedPaths::from_rows("f", rows))
                .collect::<Result<Vec<_>>>()?;
            assert_eq!(
                merge_parts("f", parts)?,
                reference_aggregation(&rows),
                "{channel_count} channels, {partitions} partitions"
            );
        }
        assert_eq!(merge_parts("f", vec![])?, AggregatedPaths::default());
        Ok(())
    }

    #[test]
    fn long_channel_names_are_interned_apart_from_short_ones() -> Result<()> {
        let mut channels = ChannelDictionary::new(&RESERVED_NAMES);
        let long = "a channel name longer than fifteen bytes";
        let ids = [
            channels.intern("f", "a")?,
            channels.intern("f", long)?,
            channels.intern("f", "a")?,
            channels.intern("f", long)?,
            channels.intern("f", "")?,
            channels.intern("f", "sixteen bytes!!!")?,
            channels.intern("f", "seventeen bytes!!")?,
            channels.intern("f", "aaaaaaaaa")?,
            channels.intern("f", "aaaaaaaaaa")?,
            channels.intern("f", "aaaaa")?,
            channels.intern("f", "aaaaaa")?,
            channels.intern("f", "aa")?,
            channels.intern("f", "aaa")?,
            channels.intern("f", "aba")?,
            channels.intern("f", "aaaaaaaaaa")?,
            channels.intern("f", "seventeen bytes!!")?,
        ];
        assert_eq!(ids, [0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 6, 4]);
        assert_ne!(short_name_key(b"ab"), short_name_key(b"ab\0"));
        Ok(())
    }

    #[test]
    fn reads_sliced_lists() -> Result<()> {
        let values: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec![
            "x", "a", "b", "y", "z",
        ]));
        let batch = batch_with_values(values, false).slice(2, 2);
        let paths = aggregate(&batch)?;
        // rows 2 and 3 are [b] and [y, z]: "x" and "a", in the unused part, are not channels
        assert_eq!(
            paths.channels,
            vec!["b".to_string(), "y".to_string(), "z".to_string()]
        );
        Ok(())
    }

    #[test]
    fn bad_rows_are_errors_naming_column_and_path() {
        let values: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec![
            Some("b"),
            None,
            Some("a"),
            Some("b"),
            Some("a"),
        ]));
        let err = aggregate(&batch_with_values(values, false))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f: column 'path' has a NULL channel at position 2 in [b, NULL]"),
            "{err}"
        );

        let names: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec![
            "b", "a", "a", "b", "a",
        ]));
        let batch = batch_with_values(names, false);
        let with_column = |index: usize, values: Vec<Option<f64>>| {
            let mut columns = batch.columns().to_vec();
            columns[index] = Arc::new(Float64Array::from(values));
            let names = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>();
            RecordBatch::try_from_iter(names.into_iter().zip(columns)).unwrap()
        };
        let err = aggregate(&with_column(2, vec![Some(1.0), None, Some(0.0), Some(1.0)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column 'revenue' is NULL for path []"),
            "{err}"
        );
        let err = aggregate(&with_column(
            1,
            vec![Some(-1.0), Some(1.0), Some(0.0), Some(1.0)],
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "column 'conversions' must be a finite number >= 0, got -1 for path [b, a]"
            ),
            "{err}"
        );
        let err = aggregate(&with_column(
            3,
            vec![Some(f64::NAN), Some(1.0), Some(0.0), Some(1.0)],
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("column 'nulls' must be a finite number >= 0, got NaN"),
            "{err}"
        );
        let err = aggregate(&with_column(
            2,
            vec![Some(1.0), Some(1.0), Some(3.0), Some(1.0)],
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("path [a] has revenue 3 but no conversions"),
            "{err}"
        );

        let reserved: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec![
            "b", "(null)", "a", "b", "a",
        ]));
        let err = aggregate(&batch_with_values(reserved, false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'(null)' cannot be a channel name"), "{err}");
    }

    #[test]
    fn held_paths_are_accounted_in_the_memory_pool() -> Result<()> {
        use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};
        let names: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec![
            "b", "a", "a", "b", "a",
        ]));
        let batch = batch_with_values(names, false);
        let stream = |batch: &RecordBatch| futures::stream::iter(vec![batch.clone()]);
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
        let reservation = MemoryConsumer::new("PathsModelExec[f]").register(&pool);
        futures::executor::block_on(aggregate_batches("f", stream(&batch), &reservation))?;
        // two distinct paths and two channels
        assert!(reservation.size() >= 2 * BYTES_PER_PATH + 2 * BYTES_PER_CHANNEL);

        let small: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(100));
        let reservation = MemoryConsumer::new("PathsModelExec[f]").register(&small);
        let err = futures::executor::block_on(aggregate_batches("f", stream(&batch), &reservation))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Resources exhausted"), "{err}");
        Ok(())
    }

    #[test]
    fn table_names_and_queries() -> Result<()> {
        let source = |text: &str| {
            paths_argument("f", Some(&Expr::Literal(ScalarValue::from(text), None)))
                .map(|query| query.sql().to_string())
        };
        assert_eq!(source(" SELECT * FROM t")?, "SELECT * FROM t");
        assert_eq!(
            source("(with x as (select 1) select * from x)")?,
            "(with x as (select 1) select * from x)"
        );
        assert_eq!(source("values ([1], 1)")?, "values ([1], 1)");
        assert_eq!(source("paths")?, "SELECT * FROM paths");
        assert_eq!(source("with_paths")?, "SELECT * FROM with_paths");
        assert_eq!(source("selected")?, "SELECT * FROM selected");
        assert_eq!(source("s.\"My Paths\"")?, "SELECT * FROM s.\"My Paths\"");
        assert!(source("  ").is_err());
        let err = paths_argument("f", Some(&Expr::Literal(ScalarValue::Int64(Some(1)), None)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f: argument 'paths' must be a string literal"),
            "{err}"
        );
        Ok(())
    }
}
