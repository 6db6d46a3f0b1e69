//! Structured choices drawn from fuzz bytes: the first bytes steer (which
//! dialect, where to cut), the rest is the payload.

pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// One byte (0 when exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        let v = u16::from_le_bytes([self.byte(), self.byte()]) as usize;
        v % n.max(1)
    }

    /// `count` cut sizes in `1..=max`, for feeding a parser in pieces.
    pub fn cuts(&mut self, count: usize, max: usize) -> Vec<usize> {
        (0..count.max(1)).map(|_| 1 + self.below(max)).collect()
    }

    /// Everything not consumed yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// `data` fed in pieces of the given sizes (cycled), the last piece
/// whatever remains.
pub fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let (mut pos, mut k) = (0, 0);
    while pos < data.len() {
        let n = cuts[k % cuts.len()].min(data.len() - pos);
        out.push(&data[pos..pos + n]);
        pos += n;
        k += 1;
    }
    out
}

/// Cut `text` into fragments of the given sizes, on char boundaries.
pub fn fragments(text: &str, sizes: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut k = 0;
    while !rest.is_empty() {
        let mut n = sizes[k % sizes.len()].min(rest.len());
        while !rest.is_char_boundary(n) {
            n += 1;
        }
        out.push(rest[..n].to_string());
        rest = &rest[n..];
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_and_fragments_cover_everything() {
        let p = pieces(b"abcdefg", &[2, 3]);
        assert_eq!(p, vec![&b"ab"[..], b"cde", b"fg"]);
        assert_eq!(fragments("aéb", &[1]), vec!["a", "é", "b"]);
        let mut i = Input::new(&[7, 0, 1]);
        assert_eq!(i.below(5), 2);
        assert_eq!(i.rest(), &[1]);
    }
}
