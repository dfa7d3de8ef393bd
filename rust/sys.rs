//! What the machine offers a run: memory and disk available, and a cheap estimate of how many
//! records a file holds. Used to choose between in-memory and out-of-core work before it starts;
//! every answer is an estimate, `None` where the platform does not say.

use std::io::Read;
use std::path::Path;

/// Memory available to new work (`MemAvailable` in `/proc/meminfo`), in bytes; Linux only.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Free space for an unprivileged user on the file system holding `dir`, in bytes.
#[cfg(unix)]
pub fn available_disk(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
pub fn available_disk(_dir: &Path) -> Option<u64> {
    None
}

/// Bytes sampled from the head of a file by [`estimate_records`].
const SAMPLE: usize = 4 << 20;
/// Bytes per record assumed where the file cannot be sampled (compressed, Parquet, JSON arrays):
/// small, so that the estimate errs towards more records.
const SMALL_RECORD: u64 = 100;

/// Records in a file, estimated from the lines in its first 4 MiB (line-based, uncompressed
/// formats) or from its size.
pub fn estimate_records(path: &Path) -> u64 {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let name = path.to_string_lossy().to_ascii_lowercase();
    let line_based = [".jsonl", ".ndjson", ".csv", ".tsv"]
        .iter()
        .any(|ext| name.ends_with(ext));
    if line_based {
        let mut head = Vec::with_capacity(SAMPLE.min(size as usize));
        let read = std::fs::File::open(path)
            .and_then(|f| f.take(SAMPLE as u64).read_to_end(&mut head))
            .unwrap_or(0);
        let lines = memchr::memchr_iter(b'\n', &head[..read]).count() as u64;
        if lines > 0 {
            return (size as f64 * lines as f64 / read as f64).ceil() as u64;
        }
    }
    size / SMALL_RECORD + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_a_line_file_are_counted_from_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, "{\"a\": 1}\n".repeat(1000)).unwrap();
        assert_eq!(estimate_records(&path), 1000);
        let gz = dir.path().join("a.jsonl.gz");
        std::fs::write(&gz, vec![0u8; 1000]).unwrap();
        assert_eq!(estimate_records(&gz), 11);
    }

    #[test]
    fn the_machine_reports_memory_and_disk() {
        if cfg!(target_os = "linux") {
            assert!(available_memory().unwrap() > 0);
            assert!(available_disk(Path::new(".")).unwrap() > 0);
        }
    }
}
