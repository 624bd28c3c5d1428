//! Row access to a column of channel paths, shared by the path transforms,
//! `attribution_weights` and the paths input of `markov_attribution` / `shapley_attribution`.
//!
//! A path reaches a function as a `List`, `LargeList`, `FixedSizeList` or list view of channel
//! names in any string encoding (`Utf8`, `LargeUtf8`, `Utf8View`, dictionaries of them, as
//! `array_agg` over Parquet or Hive-partitioned columns produces). [`DecodedPaths`] brings that
//! to one of two offset widths over one of three string arrays, once per batch, so the per-row
//! code reads plain `&str` slices without further dispatch on types. Dictionary-encoded channels
//! stay encoded (keys into the dictionary's strings), so that a reader that maps every distinct
//! channel to an id does it once per dictionary value, not once per touch.

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, LargeStringArray, StringArray, StringViewArray, UInt32Array,
};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, UInt32Type};
use datafusion::common::{Result, exec_err, plan_err};

/// Whether `data_type` can hold channel names: a string type, a dictionary of strings, or
/// `Null` (a list of untyped NULLs, e.g. `[NULL]`).
pub(crate) fn is_channel_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => true,
        DataType::Dictionary(_, value) => matches!(
            value.as_ref(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ),
        _ => false,
    }
}

/// Checks at planning time that `data_type` is a list of channel names (or an untyped NULL),
/// naming the function and the argument otherwise.
pub(crate) fn check_path_type(function: &str, argument: &str, data_type: &DataType) -> Result<()> {
    let item = match data_type {
        DataType::Null => return Ok(()),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::FixedSizeList(item, _)
        | DataType::ListView(item)
        | DataType::LargeListView(item) => item,
        other => {
            return plan_err!(
                "{function}: argument '{argument}' must be a list of channel names (e.g. array_agg(channel ORDER BY touch_ts)), got {other}"
            );
        }
    };
    if is_channel_type(item.data_type()) {
        Ok(())
    } else {
        plan_err!(
            "{function}: argument '{argument}' must be a list of strings, got a list of {}",
            item.data_type()
        )
    }
}

/// A batch of paths with list offsets and channel strings in one of the forms [`PathColumn`]
/// reads.
#[derive(Debug)]
pub(crate) struct DecodedPaths {
    list: ArrayRef,
    /// The list values' strings, or their dictionary's strings when `keys` is set.
    channels: ArrayRef,
    /// The keys of dictionary-encoded list values, as `UInt32` (NULL for a NULL channel).
    keys: Option<UInt32Array>,
}

impl DecodedPaths {
    /// Decodes `array` (any list encoding of any string encoding, or an all-NULL array).
    pub(crate) fn try_new(function: &str, array: &ArrayRef) -> Result<Self> {
        let list = match array.data_type() {
            DataType::List(_) | DataType::LargeList(_) => Arc::clone(array),
            // Fixed-size lists and list views are rare here; a cast to a plain list keeps one
            // reader instead of four.
            DataType::FixedSizeList(item, _) | DataType::ListView(item) => {
                cast(array, &DataType::List(Arc::clone(item)))?
            }
            DataType::LargeListView(item) => cast(array, &DataType::LargeList(Arc::clone(item)))?,
            DataType::Null => cast(
                array,
                &DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            )?,
            other => return exec_err!("{function}: expected a list of channels, got {other}"),
        };
        let values = match list.data_type() {
            DataType::LargeList(_) => list.as_list::<i64>().values(),
            _ => list.as_list::<i32>().values(),
        };
        let (channels, keys) = match values.data_type() {
            DataType::Dictionary(_, value)
                if matches!(
                    value.as_ref(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ) =>
            {
                let dictionary = values.as_any_dictionary();
                // Valid dictionary keys are non-negative and index the values: `Int32` keys
                // (Parquet's and Arrow's default) are the same bits as `UInt32`, so they are read
                // in place; other key types are cast (exactly).
                let keys = match dictionary.keys().as_primitive_opt::<Int32Type>() {
                    Some(keys) => UInt32Array::new(
                        ScalarBuffer::from(keys.values().inner().clone()),
                        keys.nulls().cloned(),
                    ),
                    None => cast(dictionary.keys(), &DataType::UInt32)?
                        .as_primitive::<UInt32Type>()
                        .clone(),
                };
                (Arc::clone(dictionary.values()), Some(keys))
            }
            _ => (decode_strings(function, values)?, None),
        };
        Ok(Self {
            list,
            channels,
            keys,
        })
    }

    /// Row access to the decoded paths.
    pub(crate) fn column(&self) -> PathColumn<'_> {
        let (offsets, nulls) = match self.list.data_type() {
            DataType::LargeList(_) => {
                let list = self.list.as_list::<i64>();
                (PathOffsets::Large(list.value_offsets()), list.nulls())
            }
            _ => {
                let list = self.list.as_list::<i32>();
                (PathOffsets::Small(list.value_offsets()), list.nulls())
            }
        };
        PathColumn {
            offsets,
            nulls,
            channels: ChannelStrings::new(&self.channels),
            keys: self.keys.as_ref(),
        }
    }
}

/// A column of single channel names (the `channel` argument of the window form), decoded like
/// the items of a path.
#[derive(Debug)]
pub(crate) struct DecodedChannels {
    channels: ArrayRef,
}

impl DecodedChannels {
    /// Decodes `array` (any string encoding, or an all-NULL array).
    pub(crate) fn try_new(function: &str, array: &ArrayRef) -> Result<Self> {
        Ok(Self {
            channels: decode_strings(function, array)?,
        })
    }

    /// Replaces the contents of `out` with every channel (`None` for NULL).
    pub(crate) fn read_all<'a>(&'a self, out: &mut Vec<Option<&'a str>>) {
        let strings = ChannelStrings::new(&self.channels);
        out.clear();
        out.extend((0..self.channels.len()).map(|index| strings.get(index)));
    }
}

/// `strings` as `Utf8`, `LargeUtf8`, `Utf8View` or `Null`: dictionaries are decoded once per
/// batch, since the functions compare and copy channel names, which a dictionary would only
/// save for the comparison.
fn decode_strings(function: &str, strings: &ArrayRef) -> Result<ArrayRef> {
    match strings.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            Ok(Arc::clone(strings))
        }
        DataType::Dictionary(_, value) if is_channel_type(strings.data_type()) => {
            Ok(cast(strings, value)?)
        }
        other => exec_err!("{function}: expected channel names (strings), got {other}"),
    }
}

/// The list offsets of a [`PathColumn`]: row `r` is list values `offsets[r]..offsets[r + 1]`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PathOffsets<'a> {
    Small(&'a [i32]),
    Large(&'a [i64]),
}

#[derive(Debug, Clone, Copy)]
enum ChannelStrings<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    /// The list items are of type `Null`.
    AllNull,
}

impl<'a> ChannelStrings<'a> {
    /// Typed access to an array that [`decode_strings`] produced.
    fn new(strings: &'a ArrayRef) -> Self {
        match strings.data_type() {
            DataType::Utf8 => Self::Utf8(strings.as_string::<i32>()),
            DataType::LargeUtf8 => Self::LargeUtf8(strings.as_string::<i64>()),
            DataType::Utf8View => Self::Utf8View(strings.as_string_view()),
            _ => Self::AllNull,
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Utf8(array) => array.len(),
            Self::LargeUtf8(array) => array.len(),
            Self::Utf8View(array) => array.len(),
            Self::AllNull => 0,
        }
    }

    /// String `index`; `None` for NULL, and past the end (a dictionary key out of range).
    fn get(&self, index: usize) -> Option<&'a str> {
        if index >= self.len() {
            return None;
        }
        match self {
            Self::Utf8(array) => array.is_valid(index).then(|| array.value(index)),
            Self::LargeUtf8(array) => array.is_valid(index).then(|| array.value(index)),
            Self::Utf8View(array) => array.is_valid(index).then(|| array.value(index)),
            Self::AllNull => None,
        }
    }
}

/// Row access to a batch of paths (see [`DecodedPaths::column`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathColumn<'a> {
    offsets: PathOffsets<'a>,
    nulls: Option<&'a NullBuffer>,
    channels: ChannelStrings<'a>,
    keys: Option<&'a UInt32Array>,
}

impl<'a> PathColumn<'a> {
    /// The number of paths (rows).
    pub(crate) fn len(&self) -> usize {
        match self.offsets {
            PathOffsets::Small(offsets) => offsets.len().saturating_sub(1),
            PathOffsets::Large(offsets) => offsets.len().saturating_sub(1),
        }
    }

    /// Replaces the contents of `path` with the channels of row `row` (a NULL channel is `None`)
    /// and returns `true`, or returns `false` (leaving `path` empty) when the path is NULL.
    pub(crate) fn read(&self, row: usize, path: &mut Vec<Option<&'a str>>) -> bool {
        path.clear();
        match self.channel_range(row) {
            Some(range) => {
                path.extend(range.map(|index| self.channel(index)));
                true
            }
            None => false,
        }
    }

    /// The indices (see [`Self::channel`]) of the channels of row `row`, or `None` when the path
    /// is NULL.
    pub(crate) fn channel_range(&self, row: usize) -> Option<Range<usize>> {
        if self.nulls.is_some_and(|nulls| nulls.is_null(row)) {
            return None;
        }
        Some(self.offsets(row, row + 1))
    }

    /// Whether a row's path is NULL.
    pub(crate) fn has_null_path(&self) -> bool {
        self.nulls.is_some_and(|nulls| nulls.null_count() > 0)
    }

    /// The list offsets, for a loop over all rows that reads no NULL path (see
    /// [`Self::has_null_path`]).
    pub(crate) fn list_offsets(&self) -> PathOffsets<'a> {
        self.offsets
    }

    /// The indices of the channels of every row: a sliced list shares a larger child array,
    /// of which the rows use only this part.
    pub(crate) fn channels_used(&self) -> Range<usize> {
        self.offsets(0, self.len())
    }

    /// The channel at `index` of the list values (`None` for NULL).
    pub(crate) fn channel(&self, index: usize) -> Option<&'a str> {
        match self.keys {
            None => self.channels.get(index),
            Some(keys) => keys
                .is_valid(index)
                .then(|| self.channels.get(keys.value(index) as usize))
                .flatten(),
        }
    }

    /// The channels as keys into distinct strings (see [`Self::distinct_channel`]) when the
    /// list values are dictionary-encoded: index `i` is list value `i`, NULL for a NULL channel.
    pub(crate) fn channel_keys(&self) -> Option<&'a UInt32Array> {
        self.keys
    }

    /// The number of distinct channel strings [`Self::channel_keys`] index.
    pub(crate) fn distinct_channel_count(&self) -> usize {
        self.channels.len()
    }

    /// The distinct channel string `key` of [`Self::channel_keys`] (`None` for NULL).
    pub(crate) fn distinct_channel(&self, key: u32) -> Option<&'a str> {
        self.channels.get(key as usize)
    }

    /// Offsets `start` and `end` as indices into the list values.
    fn offsets(&self, start: usize, end: usize) -> Range<usize> {
        match self.offsets {
            // Offsets of a valid Arrow list are non-negative and increasing.
            PathOffsets::Small(offsets) => offsets[start] as usize..offsets[end] as usize,
            PathOffsets::Large(offsets) => offsets[start] as usize..offsets[end] as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::test_paths::{path_array_in_every_encoding, paths_of};
    use datafusion::arrow::array::{FixedSizeListArray, new_null_array};

    #[test]
    fn reads_every_list_and_string_encoding() -> Result<()> {
        let paths = [
            Some(vec![Some("a"), None, Some("b")]),
            None,
            Some(vec![]),
            Some(vec![Some("")]),
        ];
        for array in path_array_in_every_encoding(&paths) {
            let decoded = DecodedPaths::try_new("t", &array)?;
            assert_eq!(paths_of(&decoded.column()), paths, "{}", array.data_type());
        }
        Ok(())
    }

    #[test]
    fn reads_sliced_lists() -> Result<()> {
        let paths = [
            Some(vec![Some("a")]),
            None,
            Some(vec![Some("b"), Some("c")]),
            Some(vec![Some("d")]),
        ];
        for array in path_array_in_every_encoding(&paths) {
            let sliced = array.slice(1, 2);
            let decoded = DecodedPaths::try_new("t", &sliced)?;
            assert_eq!(
                paths_of(&decoded.column()),
                vec![None, Some(vec![Some("b"), Some("c")])],
                "{}",
                array.data_type()
            );
        }
        Ok(())
    }

    #[test]
    fn reads_fixed_size_lists_and_untyped_nulls() -> Result<()> {
        let values: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c", "d"]));
        let fixed: ArrayRef = Arc::new(FixedSizeListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Utf8, true)),
            2,
            values,
            None,
        )?);
        let decoded = DecodedPaths::try_new("t", &fixed)?;
        assert_eq!(
            paths_of(&decoded.column()),
            vec![
                Some(vec![Some("a"), Some("b")]),
                Some(vec![Some("c"), Some("d")])
            ]
        );
        let nulls = new_null_array(&DataType::Null, 2);
        let decoded = DecodedPaths::try_new("t", &nulls)?;
        assert_eq!(paths_of(&decoded.column()), vec![None, None]);
        Ok(())
    }

    #[test]
    fn rejects_lists_of_non_strings_at_planning() {
        let ints = DataType::new_list(DataType::Int64, true);
        let err = check_path_type("f", "path", &ints).unwrap_err().to_string();
        assert!(
            err.contains("f: argument 'path' must be a list of strings"),
            "{err}"
        );
        let err = check_path_type("f", "path", &DataType::Utf8)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a list of channel names"), "{err}");
        assert!(check_path_type("f", "path", &DataType::Null).is_ok());
        let dictionary = DataType::new_large_list(
            DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8View)),
            true,
        );
        assert!(check_path_type("f", "path", &dictionary).is_ok());
    }
}
