//! The byte-level primitives of the log record format: big-endian integers, fixed arrays, and
//! strings and lists with one-byte lengths. Decoding is strict: short input, bad UTF-8 and
//! trailing bytes are errors, never guesses.

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// Bytes remained after the last field.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// A string field is not UTF-8.
    #[error("string at byte {0} is not UTF-8")]
    Utf8(usize),
    /// A coded field holds an unknown code.
    #[error("unknown {field} code {code}")]
    UnknownCode {
        /// Which field held it, for the error message.
        field: &'static str,
        /// The code found.
        code: u8,
    },
    /// The record format version is not one this build reads.
    #[error("unsupported record version {0}")]
    Version(u8),
}

/// Appends fields to a buffer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }
    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// Big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Fixed-size bytes, no length.
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// A string of at most 255 bytes with a one-byte length. Callers validate lengths first;
    /// a longer string is a bug, so it panics rather than write a record that cannot be read.
    pub fn str8(&mut self, v: &str) -> &mut Self {
        let len = u8::try_from(v.len()).expect("str8 field longer than 255 bytes");
        self.buf.push(len);
        self.buf.extend_from_slice(v.as_bytes());
        self
    }
    /// A string of any length below 4 GiB with a four-byte length.
    pub fn str32(&mut self, v: &str) -> &mut Self {
        let len = u32::try_from(v.len()).expect("str32 field of 4 GiB or more");
        self.u32(len);
        self.buf.extend_from_slice(v.as_bytes());
        self
    }
    /// A count of at most 255 with a one-byte length, for lists.
    pub fn count8(&mut self, n: usize) -> &mut Self {
        self.buf
            .push(u8::try_from(n).expect("list longer than 255 items"));
        self
    }
}

/// Reads fields from a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Truncated(self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    /// Big-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    /// Big-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
    /// Fixed-size bytes.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("N"))
    }
    /// A string with a one-byte length.
    pub fn str8(&mut self) -> Result<String, DecodeError> {
        let len = self.u8()? as usize;
        let at = self.pos;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Utf8(at))
    }
    /// A string with a four-byte length.
    pub fn str32(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        let at = self.pos;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Utf8(at))
    }
    /// A list count with a one-byte length.
    pub fn count8(&mut self) -> Result<usize, DecodeError> {
        Ok(self.u8()? as usize)
    }
    /// A coded value, mapped by `from_code`.
    pub fn code<T>(
        &mut self,
        field: &'static str,
        from_code: impl Fn(u8) -> Option<T>,
    ) -> Result<T, DecodeError> {
        let code = self.u8()?;
        from_code(code).ok_or(DecodeError::UnknownCode { field, code })
    }
    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }
    /// Succeeds only if every byte was read.
    pub fn end(self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_strict() {
        let mut w = Writer::new();
        w.u8(1)
            .u32(2)
            .u64(3)
            .fixed(&[9; 4])
            .str8("kia ora")
            .count8(2)
            .str32("mōrena");
        let bytes = w.finish();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.u64().unwrap(), 3);
        assert_eq!(r.fixed::<4>().unwrap(), [9; 4]);
        assert_eq!(r.str8().unwrap(), "kia ora");
        assert_eq!(r.count8().unwrap(), 2);
        assert_eq!(r.str32().unwrap(), "mōrena");
        r.end().unwrap();

        let mut r = Reader::new(&bytes[..3]);
        r.u8().unwrap();
        assert_eq!(r.u32(), Err(DecodeError::Truncated(1)));
        let mut r = Reader::new(&[1, 2]);
        r.u8().unwrap();
        assert_eq!(r.end(), Err(DecodeError::Trailing(1)));
        assert_eq!(
            Reader::new(&[2, 0xff, 0xfe]).str8(),
            Err(DecodeError::Utf8(1))
        );
    }
}
