//! A block-aligned heap buffer that io_uring can own during an O_DIRECT
//! write or read.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::format::{align_up, BLOCK_BYTES};

/// A buffer whose start and capacity are multiples of [`BLOCK_BYTES`],
/// zeroed when allocated. `len` counts the bytes holding data; O_DIRECT
/// writes send `len` rounded up to a block, the tail zeroed by
/// [`AlignedBuf::pad_to_block`]. A reused buffer (after `clear`) holds the
/// previous group's bytes past `len`: `extend` hands them out, so its
/// callers overwrite every byte they extend by (`encode_record` does).
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    capacity: usize,
    len: usize,
}

// SAFETY: the buffer owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of at least `capacity` bytes (rounded up to a block).
    pub fn zeroed(capacity: usize) -> AlignedBuf {
        let capacity = align_up(capacity.max(BLOCK_BYTES), BLOCK_BYTES);
        let layout = Self::layout(capacity);
        // SAFETY: layout has non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        AlignedBuf {
            ptr,
            capacity,
            len: 0,
        }
    }

    /// A buffer with no allocation (capacity 0), for a place a buffer was
    /// moved out of: it costs no allocation per commit.
    pub fn empty() -> AlignedBuf {
        AlignedBuf {
            ptr: NonNull::dangling(),
            capacity: 0,
            len: 0,
        }
    }

    fn layout(capacity: usize) -> Layout {
        // BLOCK_BYTES is a power of two and capacity is bounded by config.
        Layout::from_size_align(capacity, BLOCK_BYTES).expect("aligned layout")
    }

    /// Bytes holding data.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no data is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Allocated bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The data bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for capacity bytes, all initialised (for
        // `empty`, dangling but non-null and aligned, with length 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The whole allocation, mutable.
    pub fn as_full_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr is valid for capacity bytes, all initialised (for
        // `empty`, dangling but non-null and aligned, with length 0).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.capacity) }
    }

    /// Extends `len` by `n` bytes and returns them for the caller to fill,
    /// every byte: they may hold an earlier user's data. Grows the
    /// allocation if needed (contents are kept).
    pub fn extend(&mut self, n: usize) -> &mut [u8] {
        let start = self.len;
        let end = start + n;
        if end > self.capacity {
            let mut bigger = AlignedBuf::zeroed(end.max(self.capacity * 2));
            bigger.as_full_mut()[..start].copy_from_slice(self.as_slice());
            bigger.len = start;
            *self = bigger;
        }
        self.len = end;
        &mut self.as_full_mut()[start..end]
    }

    /// Empties the buffer for reuse. Its bytes are left as they are: the
    /// next user overwrites what it extends by, and `pad_to_block` zeroes
    /// the padding, so zeroing the whole used part here (once per commit)
    /// would only cost time.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Zeroes the bytes from `len` to the next block boundary and sets
    /// `len` there: the padding after a commit's marker reads as zeros on
    /// disk, whatever the buffer held before.
    pub fn pad_to_block(&mut self) {
        let padded = align_up(self.len, BLOCK_BYTES);
        assert!(padded <= self.capacity, "padding past the allocation");
        let len = self.len;
        self.as_full_mut()[len..padded].fill(0);
        self.len = padded;
    }

    /// Sets the data length (for reads); must not exceed the capacity.
    pub fn set_len(&mut self, len: usize) {
        assert!(len <= self.capacity);
        self.len = len;
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.capacity == 0 {
            return; // `empty`: nothing was allocated.
        }
        // SAFETY: allocated in `zeroed` with this exact layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.capacity)) }
    }
}

// SAFETY: the pointer is stable for the buffer's life (heap allocation that
// moving the struct does not move) and `len` bytes are initialised.
unsafe impl monoio::buf::IoBuf for AlignedBuf {
    fn read_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.len
    }
}

// SAFETY: as above; the whole capacity is initialised (zeroed at allocation).
unsafe impl monoio::buf::IoBufMut for AlignedBuf {
    fn write_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn bytes_total(&mut self) -> usize {
        self.capacity
    }

    unsafe fn set_init(&mut self, pos: usize) {
        self.len = pos;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_is_block_aligned_and_zeroed() {
        let mut b = AlignedBuf::zeroed(100);
        assert_eq!(b.capacity(), BLOCK_BYTES);
        assert_eq!(b.as_full_mut().as_ptr() as usize % BLOCK_BYTES, 0);
        assert!(b.as_full_mut().iter().all(|&x| x == 0));
    }

    #[test]
    fn extend_grows_and_keeps_contents() {
        let mut b = AlignedBuf::zeroed(BLOCK_BYTES);
        b.extend(10).copy_from_slice(b"0123456789");
        b.extend(BLOCK_BYTES * 2).fill(1);
        assert_eq!(&b.as_slice()[..10], b"0123456789");
        assert_eq!(b.len(), 10 + BLOCK_BYTES * 2);
        assert_eq!(b.as_full_mut().as_ptr() as usize % BLOCK_BYTES, 0);
    }

    #[test]
    fn clear_then_pad_leaves_zero_tail() {
        let mut b = AlignedBuf::zeroed(BLOCK_BYTES);
        b.extend(BLOCK_BYTES).fill(0xAB);
        b.clear();
        b.extend(3).fill(1);
        b.pad_to_block();
        assert_eq!(b.len(), BLOCK_BYTES);
        assert!(b.as_slice()[3..].iter().all(|&x| x == 0));
    }

    #[test]
    fn an_empty_buffer_allocates_nothing_and_grows_on_extend() {
        let mut b = AlignedBuf::empty();
        assert_eq!((b.capacity(), b.len()), (0, 0));
        assert!(b.as_slice().is_empty());
        b.extend(5).fill(7);
        assert!(b.capacity() >= BLOCK_BYTES);
        assert_eq!(b.as_full_mut().as_ptr() as usize % BLOCK_BYTES, 0);
        b.pad_to_block();
        assert_eq!(&b.as_slice()[..6], &[7, 7, 7, 7, 7, 0]);
        drop(AlignedBuf::empty());
    }

    #[test]
    fn a_reused_buffer_pads_with_zeros_over_old_bytes() {
        let mut b = AlignedBuf::zeroed(3 * BLOCK_BYTES);
        b.extend(3 * BLOCK_BYTES).fill(0xCD);
        b.clear();
        b.extend(BLOCK_BYTES + 10).fill(2);
        b.pad_to_block();
        assert_eq!(b.len(), 2 * BLOCK_BYTES);
        assert!(b.as_slice()[BLOCK_BYTES + 10..].iter().all(|&x| x == 0));
    }
}
