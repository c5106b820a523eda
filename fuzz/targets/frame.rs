//! The framing of structured inputs: a few fixed fields, then
//! length-prefixed byte strings.
//!
//! Reading never fails: a field past the end of the input reads as zero
//! and a length past the end takes what is left, so every byte string is
//! some input and libFuzzer's mutations (flips, insertions, splices) keep
//! most of the structure. [`Writer`] writes the same framing, for seeds.

/// Reads framed fields off the front of an input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    pub fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        let got = self.bytes(2);
        b[..got.len()].copy_from_slice(got);
        u16::from_le_bytes(b)
    }

    pub fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        let got = self.bytes(4);
        b[..got.len()].copy_from_slice(got);
        u32::from_le_bytes(b)
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let got = self.bytes(8);
        b[..got.len()].copy_from_slice(got);
        u64::from_le_bytes(b)
    }

    /// A byte string with a one-byte length.
    pub fn chunk8(&mut self) -> &'a [u8] {
        let n = self.u8();
        self.bytes(n.into())
    }

    /// A byte string with a two-byte (little-endian) length.
    pub fn chunk16(&mut self) -> &'a [u8] {
        let n = self.u16();
        self.bytes(n.into())
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}

/// Writes the framing [`Reader`] reads (for seeds).
#[derive(Debug, Default, Clone)]
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn u8(mut self, v: u8) -> Self {
        self.out.push(v);
        self
    }

    pub fn u16(mut self, v: u16) -> Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(mut self, v: u32) -> Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(mut self, v: u64) -> Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A byte string with a one-byte length; panics over 255 bytes.
    pub fn chunk8(self, bytes: &[u8]) -> Self {
        let n = u8::try_from(bytes.len()).expect("chunk8 holds at most 255 bytes");
        self.u8(n).bytes(bytes)
    }

    /// A byte string with a two-byte length; panics over 65535 bytes.
    pub fn chunk16(self, bytes: &[u8]) -> Self {
        let n = u16::try_from(bytes.len()).expect("chunk16 holds at most 65535 bytes");
        self.u16(n).bytes(bytes)
    }

    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        self.out.extend_from_slice(bytes);
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// A fieldless enum an input picks a variant of with one byte: `ALL`, the
/// variants in order; `from_byte`, the variant a byte picks (any byte
/// picks one, modulo their number); `byte`, the byte that picks a variant.
macro_rules! byte_coded {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn from_byte(b: u8) -> Self {
                Self::ALL[usize::from(b) % Self::ALL.len()]
            }

            pub fn byte(self) -> u8 {
                self as u8
            }
        }
    };
}
pub(crate) use byte_coded;
