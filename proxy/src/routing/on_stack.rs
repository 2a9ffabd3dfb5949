//! Short per-statement lists (a search path, a Bind's parameters and formats) handed to the
//! router as slices without allocating: on the stack when short, in a Vec otherwise.

/// Up to this many items stay on the stack.
const N: usize = 16;

/// Calls `f` with the `len` items of `iter` as a slice; `fill` pads the stack array.
pub fn with_slice<T: Copy, R>(len: usize, iter: impl Iterator<Item = T>, fill: T, f: impl FnOnce(&[T]) -> R) -> R {
    if len <= N {
        let mut arr = [fill; N];
        let mut n = 0;
        for (slot, item) in arr.iter_mut().zip(iter) {
            *slot = item;
            n += 1;
        }
        f(arr.get(..n).unwrap_or_default())
    } else {
        let v: Vec<T> = iter.collect();
        f(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::with_slice;

    #[test]
    fn short_and_long() {
        assert_eq!(with_slice(3, [1, 2, 3].into_iter(), 0, |s| s.to_vec()), vec![1, 2, 3]);
        let long: Vec<i32> = (0..40).collect();
        assert_eq!(with_slice(40, long.iter().copied(), 0, |s| s.to_vec()), long);
        assert_eq!(with_slice(0, std::iter::empty::<i32>(), 0, |s| s.len()), 0);
    }
}
