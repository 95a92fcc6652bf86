//! The machine's hostname, the default `host` field.

/// Longest hostname read (POSIX HOST_NAME_MAX is 255).
const HOSTNAME_MAX_BYTES: usize = 256;

/// The hostname, or `None` if it cannot be read or is empty.
#[cfg(unix)]
pub(crate) fn hostname() -> Option<String> {
    let mut buf = [0u8; HOSTNAME_MAX_BYTES];
    // SAFETY: buf is a valid, writable buffer of buf.len() bytes; gethostname
    // writes at most that many bytes and does not keep the pointer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    // POSIX does not promise a NUL when the name is truncated: stop at the
    // first NUL or the end of the buffer.
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// The hostname from the environment where there is no `gethostname`.
#[cfg(not(unix))]
pub(crate) fn hostname() -> Option<String> {
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostname_is_found_and_not_empty() {
        let name = super::hostname().expect("this machine has a hostname");
        assert!(!name.is_empty());
    }
}
