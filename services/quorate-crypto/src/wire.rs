//! The one canonical byte encoding used for everything that is signed, hashed or sealed.
//!
//! Integers are big-endian and fixed-width; byte strings and UTF-8 strings carry a `u32`
//! length; lists carry a `u16` count; optional values are a `0`/`1` byte then the value.
//! The reader is strict (no trailing bytes, no non-canonical booleans, no invalid UTF-8,
//! bounded lengths), so every value has exactly one encoding and parsing untrusted bytes
//! cannot allocate more than the input justifies.

use crate::Error;

/// Largest byte string or text field accepted: 1 MiB (sealed metadata is the largest).
pub(crate) const MAX_FIELD_LEN: usize = 1 << 20;

#[derive(Debug, Default)]
pub(crate) struct Writer {
    buffer: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(domain: &str) -> Self {
        let mut writer = Self::default();
        writer.str(domain);
        writer
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.buffer.push(value);
        self
    }

    pub(crate) fn u16(&mut self, value: u16) -> &mut Self {
        self.buffer.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.buffer.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn i64(&mut self, value: i64) -> &mut Self {
        self.buffer.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn fixed(&mut self, value: &[u8]) -> &mut Self {
        self.buffer.extend_from_slice(value);
        self
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        let len = u32::try_from(value.len()).expect("field lengths are bounded by callers");
        self.buffer.extend_from_slice(&len.to_be_bytes());
        self.buffer.extend_from_slice(value);
        self
    }

    pub(crate) fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    pub(crate) fn option_i64(&mut self, value: Option<i64>) -> &mut Self {
        match value {
            None => self.u8(0),
            Some(value) => self.u8(1).i64(value),
        }
    }

    pub(crate) fn list<T>(
        &mut self,
        items: &[T],
        mut each: impl FnMut(&mut Self, &T),
    ) -> &mut Self {
        let count = u16::try_from(items.len()).expect("list lengths are bounded by callers");
        self.u16(count);
        for item in items {
            each(self, item);
        }
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buffer
    }
}

/// The version of `found` when it is `expected`'s domain at a later version ("…/v3" where
/// "…/v1" was expected): made by a newer Quorate, or altered to look so.
fn newer_version(found: &str, expected: &str) -> Option<u32> {
    let (family, version) = expected.rsplit_once("/v")?;
    let expected_version: u32 = version.parse().ok()?;
    let found_version = found.strip_prefix(family)?.strip_prefix("/v")?;
    // Digits only, and at most nine (as the browser's reader): "+3" or "3x" is damage.
    if found_version.is_empty()
        || found_version.len() > 9
        || !found_version.bytes().all(|byte| byte.is_ascii_digit())
    {
        return None;
    }
    found_version
        .parse()
        .ok()
        .filter(|found| *found > expected_version)
}

#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `input` that first expects the `domain` string. `what` names the
    /// structure in errors.
    pub(crate) fn new(input: &'a [u8], domain: &str, what: &'static str) -> Result<Self, Error> {
        let mut reader = Self { rest: input, what };
        let found = reader.str()?;
        if found != domain {
            return Err(match newer_version(found, domain) {
                Some(version) => Error::NewerFormat { what, version },
                None => reader.malformed(),
            });
        }
        Ok(reader)
    }

    pub(crate) fn malformed(&self) -> Error {
        Error::Malformed { what: self.what }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < len {
            return Err(self.malformed());
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, Error> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let len = u32::from_be_bytes(self.array()?) as usize;
        if len > MAX_FIELD_LEN {
            return Err(self.malformed());
        }
        self.take(len)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, Error> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|_| self.malformed())
    }

    pub(crate) fn string(&mut self) -> Result<String, Error> {
        self.str().map(str::to_owned)
    }

    pub(crate) fn option_i64(&mut self) -> Result<Option<i64>, Error> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.i64()?)),
            _ => Err(self.malformed()),
        }
    }

    pub(crate) fn list<T>(
        &mut self,
        mut each: impl FnMut(&mut Self) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        let count = self.u16()? as usize;
        // Every item takes at least one byte, so the count cannot outrun the input.
        if count > self.rest.len() {
            return Err(self.malformed());
        }
        (0..count).map(|_| each(self)).collect()
    }

    /// Ends the parse: trailing bytes would make a second encoding of the same value.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.malformed())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_version_of_the_domain_is_told_apart_from_damage() {
        let read = |domain: &str| {
            let bytes = Writer::new(domain).finish();
            Reader::new(&bytes, "quorate/thing/v2", "thing").map(|_| ())
        };
        assert!(read("quorate/thing/v2").is_ok());
        let newer = read("quorate/thing/v3").unwrap_err();
        assert!(matches!(newer, Error::NewerFormat { version: 3, .. }));
        assert_eq!(
            newer.to_string(),
            "the thing names format v3, newer than this device reads: upgrade Quorate if a newer version exists; otherwise it was altered on its way here"
        );
        for damaged in [
            "quorate/thing/v1",
            "quorate/thing/v+3",
            "quorate/thing/v3x",
            "quorate/things/v3",
            "quorate/thing/v99999999999",
            "",
        ] {
            assert!(
                matches!(read(damaged), Err(Error::Malformed { what: "thing" })),
                "{damaged}"
            );
        }
    }

    #[test]
    fn round_trip_and_strictness() {
        let mut writer = Writer::new("test/v1");
        writer
            .u8(7)
            .u16(513)
            .u64(1 << 40)
            .i64(-5)
            .str("héllo")
            .option_i64(Some(9))
            .option_i64(None)
            .list(&[1u8, 2, 3], |w, item| {
                w.u8(*item);
            });
        let encoded = writer.finish();

        let mut reader = Reader::new(&encoded, "test/v1", "test").unwrap();
        assert_eq!(reader.u8().unwrap(), 7);
        assert_eq!(reader.u16().unwrap(), 513);
        assert_eq!(reader.u64().unwrap(), 1 << 40);
        assert_eq!(reader.i64().unwrap(), -5);
        assert_eq!(reader.str().unwrap(), "héllo");
        assert_eq!(reader.option_i64().unwrap(), Some(9));
        assert_eq!(reader.option_i64().unwrap(), None);
        assert_eq!(reader.list(|r| r.u8()).unwrap(), vec![1, 2, 3]);
        reader.finish().unwrap();

        let mut trailing = encoded.clone();
        trailing.push(0);
        let mut reader = Reader::new(&trailing, "test/v1", "test").unwrap();
        reader.u8().unwrap();
        assert!(Reader::new(&encoded, "other/v1", "test").is_err());
    }

    #[test]
    fn rejects_oversized_lengths_without_allocating() {
        let mut writer = Writer::new("d");
        writer.fixed(&u32::MAX.to_be_bytes());
        let encoded = writer.finish();
        let mut reader = Reader::new(&encoded, "d", "test").unwrap();
        assert!(matches!(
            reader.bytes(),
            Err(Error::Malformed { what: "test" })
        ));
    }
}
