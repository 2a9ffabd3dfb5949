//! Bob Jenkins' lookup3 exactly as PostgreSQL's `src/common/hashfn.c` runs it on a little-endian
//! machine (the only byte order Citus clusters run on in practice). The result is the server's
//! `uint32`, which callers reinterpret as `int32` to compare with `pg_dist_shard` ranges.

const SEED: u32 = 0x9e37_79b9;
const EXTRA: u32 = 3_923_095;

#[inline]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline]
fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

#[inline]
fn word(bytes: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    for (dst, src) in w.iter_mut().zip(bytes) {
        *dst = *src;
    }
    u32::from_le_bytes(w)
}

/// `hash_bytes(k, keylen)`: used by hashtext, hashbpchar, hashname, uuid_hash, hashfloat8.
#[allow(clippy::indexing_slicing)] // blocks are exactly 12 bytes (chunks_exact); tail ranges are bounded by its length
pub fn hash_bytes(key: &[u8]) -> u32 {
    // PostgreSQL passes the length as an int; lengths beyond that cannot reach us from a Datum.
    let len = key.len() as u32;
    let init = SEED.wrapping_add(len).wrapping_add(EXTRA);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut chunks = key.chunks_exact(12);
    for block in &mut chunks {
        a = a.wrapping_add(word(&block[0..4]));
        b = b.wrapping_add(word(&block[4..8]));
        c = c.wrapping_add(word(&block[8..12]));
        mix(&mut a, &mut b, &mut c);
    }
    let tail = chunks.remainder();
    // The lowest byte of c is reserved for the length, so tail bytes 8..11 land shifted by one.
    if tail.len() > 8 {
        c = c.wrapping_add(word(&tail[8..]) << 8);
    }
    if tail.len() > 4 {
        b = b.wrapping_add(word(&tail[4..tail.len().min(8)]));
    }
    if !tail.is_empty() {
        a = a.wrapping_add(word(&tail[..tail.len().min(4)]));
    }
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// `hash_bytes_uint32(k)`: used by hashint2/4/8, hashoid, hashchar and date's hash opclass.
pub fn hash_bytes_uint32(k: u32) -> u32 {
    let init = SEED.wrapping_add(4).wrapping_add(EXTRA);
    let (mut a, mut b, mut c) = (init.wrapping_add(k), init, init);
    final_mix(&mut a, &mut b, &mut c);
    c
}
