//! The stored form of one probe's slots for one UTC day: 288 slots, each missing (nobody
//! reported) or a [`Counts`], in a compact byte encoding.
//!
//! Encoding (version 1):
//!
//! ```text
//! version: u8 = 1
//! day:     varint(zigzag(day))          unix day number (unix seconds / 86,400)
//! runs:    { run: varint, tag: u8, counts: varint × popcount(tag >> 1) }*
//! ```
//!
//! Varints are unsigned LEB128. A run is `run` (1..=288) consecutive identical slots; the runs
//! cover the day's 288 slots exactly. The tag's bit 0 says the slot is present (a missing slot
//! is tag 0, with no counts — distinct from a present all-nodata slot); bits 1–4 say which of
//! up, down, unknown, nodata are non-zero, and only those follow, in that order.
//!
//! Sizes: a steady day (one run of identical slots, e.g. all up) takes 9 bytes. The worst case
//! for well-formed slots (each summing to 300) is 288 distinct slots with all four counts
//! non-zero, two of them ≥ 128: 8 bytes a slot, 2,308 bytes a day (measured in a test below).
//! Malformed slots with counts up to `u32::MAX` could take 22 bytes a slot; [`MAX_ENCODED_LEN`]
//! bounds what [`DayRecord::decode`] accepts.
//!
//! Decoding never panics: truncated input, input longer than a record can be, unknown tags,
//! bad varints, runs that leave the day and bytes after the last slot are errors.

use std::collections::BTreeMap;

use crate::counts::Counts;
use crate::{DAY_SECS, Error, SLOT_SECS};

/// Slots in a UTC day.
pub const SLOTS_PER_DAY: usize = (DAY_SECS / SLOT_SECS) as usize;
/// The first byte of every record this version writes.
pub const FORMAT_VERSION: u8 = 1;
/// The most bytes a record takes as [`DayRecord::encode`] writes it: the version, a 10-byte day
/// and 288 runs of one slot, each a 1-byte run length, a tag and four 5-byte counts.
pub const MAX_ENCODED_LEN: usize = 1 + 10 + SLOTS_PER_DAY * (1 + 1 + 4 * 5);

const PRESENT: u8 = 1;
/// The largest valid tag: present, all four counts non-zero.
const FULL_TAG: u8 = 0b1_1111;
/// Days whose slot starts fit in an i64 with room to spare (±10^12 days is ±2.7 billion years).
const MAX_DAY: i64 = 1_000_000_000_000;

/// One probe's slots for one UTC day; `slots[i]` starts at `day * 86,400 + i * 300`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRecord {
    /// The unix day number: unix seconds divided by 86,400, rounded down.
    pub day: i64,
    pub slots: [Option<Counts>; SLOTS_PER_DAY],
}

impl DayRecord {
    /// A day with no slot reported.
    pub fn new(day: i64) -> Self {
        DayRecord { day, slots: [None; SLOTS_PER_DAY] }
    }

    /// The day that contains `secs` (unix seconds).
    pub fn day_of(secs: i64) -> i64 {
        secs.div_euclid(DAY_SECS)
    }

    /// The day's first second (unix seconds).
    pub fn start(&self) -> i64 {
        self.day.saturating_mul(DAY_SECS)
    }

    /// The slot that contains `secs`, if it is in this day.
    pub fn get(&self, secs: i64) -> Option<Counts> {
        self.index_of(secs).and_then(|i| self.slots[i])
    }

    /// Stores the slot that contains `secs`; false (and nothing stored) when it is not in
    /// this day.
    pub fn set(&mut self, secs: i64, counts: Counts) -> bool {
        let Some(i) = self.index_of(secs) else { return false };
        self.slots[i] = Some(counts);
        true
    }

    /// The present slots with their starts, in time order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, Counts)> + '_ {
        let start = self.start();
        self.slots
            .iter()
            .enumerate()
            .filter_map(move |(i, slot)| slot.map(|c| (start.saturating_add(i as i64 * SLOT_SECS), c)))
    }

    /// Cuts slots (keyed by start, as [`crate::fold`] makes them) into one record per UTC day
    /// they touch, in day order.
    pub fn split(slots: &BTreeMap<i64, Counts>) -> Vec<DayRecord> {
        let mut days: Vec<DayRecord> = Vec::new();
        for (&start, &counts) in slots {
            let day = DayRecord::day_of(start);
            if days.last().is_none_or(|record| record.day != day) {
                days.push(DayRecord::new(day));
            }
            if let Some(record) = days.last_mut() {
                record.set(start, counts);
            }
        }
        days
    }

    /// Merges another record of the same day into this one, slot by slot, by the slot merge
    /// rule (a slot present on one side only is taken as it is). Idempotent, commutative and
    /// associative, like the rule.
    pub fn merge(&mut self, other: &DayRecord) -> Result<(), Error> {
        if self.day != other.day {
            return Err(Error::DayMismatch { ours: self.day, theirs: other.day });
        }
        for (ours, theirs) in self.slots.iter_mut().zip(&other.slots) {
            *ours = match (*ours, *theirs) {
                (Some(a), Some(b)) => Some(a.combine(b, SLOT_SECS as u32)),
                (a, b) => a.or(b),
            };
        }
        Ok(())
    }

    /// The stored bytes (see the module docs for the format).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        write_varint(&mut out, zigzag(self.day));
        for (run, slot) in runs(&self.slots) {
            write_varint(&mut out, run as u64);
            write_slot(&mut out, slot);
        }
        out
    }

    /// Reads what [`DayRecord::encode`] wrote; an error, never a panic, on anything else.
    pub fn decode(bytes: &[u8]) -> Result<DayRecord, Error> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(Error::Oversized(bytes.len()));
        }
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.byte()?;
        if version != FORMAT_VERSION {
            return Err(Error::UnknownVersion(version));
        }
        let day = unzigzag(reader.varint(u64::MAX)?);
        if !(-MAX_DAY..=MAX_DAY).contains(&day) {
            return Err(Error::DayOutOfRange(day));
        }
        let mut record = DayRecord::new(day);
        let mut filled = 0;
        while filled < SLOTS_PER_DAY {
            let run_at = reader.at;
            let run = reader.varint(u64::MAX)?;
            if run == 0 || run > (SLOTS_PER_DAY - filled) as u64 {
                return Err(Error::BadRun(run_at));
            }
            let run = run as usize;
            let slot = reader.slot()?;
            record.slots[filled..filled + run].fill(slot);
            filled += run;
        }
        match reader.rest() {
            0 => Ok(record),
            left => Err(Error::TrailingBytes(left)),
        }
    }

    fn index_of(&self, secs: i64) -> Option<usize> {
        let offset = secs.checked_sub(self.start())?;
        (0..DAY_SECS).contains(&offset).then_some((offset / SLOT_SECS) as usize)
    }
}

/// Maximal runs of identical slots, as (length, slot).
fn runs(slots: &[Option<Counts>]) -> Vec<(usize, Option<Counts>)> {
    let mut runs: Vec<(usize, Option<Counts>)> = Vec::new();
    for &slot in slots {
        match runs.last_mut() {
            Some((length, last)) if *last == slot => *length += 1,
            _ => runs.push((1, slot)),
        }
    }
    runs
}

fn write_slot(out: &mut Vec<u8>, slot: Option<Counts>) {
    let Some(counts) = slot else {
        out.push(0);
        return;
    };
    let fields = [counts.up, counts.down, counts.unknown, counts.nodata];
    let mask = fields.iter().enumerate().fold(0u8, |mask, (i, &v)| if v == 0 { mask } else { mask | (1 << i) });
    out.push(PRESENT | mask << 1);
    for value in fields.into_iter().filter(|&v| v != 0) {
        write_varint(out, u64::from(value));
    }
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// A cursor over the input that fails, never panics, at its end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, Error> {
        let byte = *self.bytes.get(self.at).ok_or(Error::Truncated(self.at))?;
        self.at += 1;
        Ok(byte)
    }

    /// An unsigned LEB128 value of at most 10 bytes that must not exceed `max`.
    fn varint(&mut self, max: u64) -> Result<u64, Error> {
        let start = self.at;
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(Error::BadVarint(start));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return if value <= max { Ok(value) } else { Err(Error::BadVarint(start)) };
            }
        }
        Err(Error::BadVarint(start))
    }

    fn slot(&mut self) -> Result<Option<Counts>, Error> {
        let offset = self.at;
        let tag = self.byte()?;
        if tag == 0 {
            return Ok(None);
        }
        if tag & PRESENT == 0 || tag > FULL_TAG {
            return Err(Error::BadTag { tag, offset });
        }
        let mut fields = [0u32; 4];
        for (i, field) in fields.iter_mut().enumerate() {
            if (tag >> 1) & (1 << i) != 0 {
                *field = self.varint(u64::from(u32::MAX))? as u32;
            }
        }
        Ok(Some(Counts::new(fields[0], fields[1], fields[2], fields[3])))
    }

    fn rest(&self) -> usize {
        self.bytes.len() - self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 20_000; // 2024-10-04

    fn record_with(slot: impl Fn(usize) -> Option<Counts>) -> DayRecord {
        let mut record = DayRecord::new(DAY);
        for (i, s) in record.slots.iter_mut().enumerate() {
            *s = slot(i);
        }
        record
    }

    #[test]
    fn a_steady_day_takes_a_few_bytes() {
        let all_up = record_with(|_| Some(Counts::new(300, 0, 0, 0)));
        let bytes = all_up.encode();
        assert_eq!(bytes.len(), 9, "{bytes:?}");
        assert_eq!(DayRecord::decode(&bytes), Ok(all_up));
        assert_eq!(DayRecord::new(DAY).encode().len(), 7);
    }

    #[test]
    fn the_worst_well_formed_day_takes_2308_bytes() {
        // 288 distinct slots, every count non-zero, two of them ≥ 128 (the most that fit in 300).
        let worst = record_with(|i| {
            let small = 1 + i as u32 % 22;
            Some(Counts::new(128 + (i as u32 / 22), 128, small, 44 - small - i as u32 / 22))
        });
        assert!(worst.slots.iter().all(|s| s.is_some_and(|c| c.total() == 300)));
        assert_eq!(runs(&worst.slots).len(), SLOTS_PER_DAY);
        let bytes = worst.encode();
        assert_eq!(bytes.len(), 2308);
        assert_eq!(DayRecord::decode(&bytes), Ok(worst));
    }

    #[test]
    fn a_missing_slot_differs_from_an_all_nodata_one() {
        let nodata = record_with(|_| Some(Counts::nodata(300)));
        let missing = DayRecord::new(DAY);
        assert_ne!(nodata.encode(), missing.encode());
        assert_eq!(DayRecord::decode(&nodata.encode()), Ok(nodata));
        assert_eq!(DayRecord::decode(&missing.encode()), Ok(missing));
    }

    #[test]
    fn malformed_counts_round_trip() {
        let junk = record_with(|i| (i % 3 == 0).then_some(Counts::new(u32::MAX, 0, 7, u32::MAX)));
        let bytes = junk.encode();
        assert!(bytes.len() <= MAX_ENCODED_LEN);
        assert_eq!(DayRecord::decode(&bytes), Ok(junk));
    }

    #[test]
    fn the_largest_record_fits_the_bound() {
        let largest = record_with(|i| Some(Counts::new(u32::MAX - i as u32, u32::MAX, u32::MAX, u32::MAX)));
        let largest = DayRecord { day: i64::MIN, ..largest };
        assert_eq!(largest.encode().len(), MAX_ENCODED_LEN);
    }

    #[test]
    fn bad_input_is_an_error() {
        let good = record_with(|i| Some(Counts::new(300 - i as u32, i as u32, 0, 0))).encode();
        assert_eq!(DayRecord::decode(&[]), Err(Error::Truncated(0)));
        assert_eq!(DayRecord::decode(&good[..good.len() - 1]), Err(Error::Truncated(good.len() - 1)));
        assert_eq!(DayRecord::decode(&[&good[..], &[0]].concat()), Err(Error::TrailingBytes(1)));
        assert_eq!(DayRecord::decode(&[2]), Err(Error::UnknownVersion(2)));
        assert_eq!(DayRecord::decode(&vec![1; MAX_ENCODED_LEN + 1]), Err(Error::Oversized(MAX_ENCODED_LEN + 1)));
        // day 0, a run of 289 slots
        assert_eq!(DayRecord::decode(&[1, 0, 0xa1, 0x02, 0]), Err(Error::BadRun(2)));
        // day 0, a run of 0 slots
        assert_eq!(DayRecord::decode(&[1, 0, 0, 0]), Err(Error::BadRun(2)));
        // day 0, 288 slots with tag 0x20
        assert_eq!(DayRecord::decode(&[1, 0, 0xa0, 0x02, 0x20]), Err(Error::BadTag { tag: 0x20, offset: 4 }));
        assert_eq!(DayRecord::decode(&[1, 0, 0xa0, 0x02, 0x02]), Err(Error::BadTag { tag: 0x02, offset: 4 }));
        // a varint above u64::MAX, and one of 11 bytes
        assert_eq!(
            DayRecord::decode(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(Error::BadVarint(1))
        );
        assert_eq!(DayRecord::decode(&[&[1][..], &[0x80; 10], &[0x01]].concat()), Err(Error::BadVarint(1)));
        // a day beyond the range
        let far = {
            let mut r = DayRecord::new(0).encode();
            r.splice(1..2, [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
            r
        };
        assert_eq!(DayRecord::decode(&far), Err(Error::DayOutOfRange(i64::MAX)));
        // a count above u32::MAX
        assert_eq!(
            DayRecord::decode(&[1, 0, 0xa0, 0x02, 0x03, 0x80, 0x80, 0x80, 0x80, 0x10]),
            Err(Error::BadVarint(5))
        );
    }

    #[test]
    fn merging_is_slot_by_slot_and_idempotent() {
        let mut a = record_with(|i| (i < 2).then_some(Counts::new(0, 300, 0, 0)));
        let b = record_with(|i| (i == 1 || i == 2).then_some(Counts::new(100, 0, 0, 200)));
        a.merge(&b).unwrap();
        assert_eq!(
            &a.slots[..4],
            &[
                Some(Counts::new(0, 300, 0, 0)),
                Some(Counts::new(100, 200, 0, 0)),
                Some(Counts::new(100, 0, 0, 200)),
                None
            ]
        );
        let once = a.clone();
        a.merge(&once).unwrap();
        assert_eq!(a, once);
        assert_eq!(a.merge(&DayRecord::new(DAY + 1)), Err(Error::DayMismatch { ours: DAY, theirs: DAY + 1 }));
    }

    #[test]
    fn slots_split_into_days_and_come_back() {
        let start = DAY * DAY_SECS;
        let slots: BTreeMap<i64, Counts> = [
            (start - 300, Counts::nodata(300)),
            (start, Counts::new(300, 0, 0, 0)),
            (start + 600, Counts::new(0, 300, 0, 0)),
        ]
        .into();
        let days = DayRecord::split(&slots);
        assert_eq!(days.iter().map(|d| d.day).collect::<Vec<_>>(), [DAY - 1, DAY]);
        assert_eq!(days[1].get(start + 650), Some(Counts::new(0, 300, 0, 0)));
        assert_eq!(days[1].get(start + DAY_SECS), None);
        let back: BTreeMap<i64, Counts> = days.iter().flat_map(DayRecord::iter).collect();
        assert_eq!(back, slots);
    }
}
