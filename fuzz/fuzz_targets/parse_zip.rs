//! Any bytes as a ZIP archive: `ZipReader::open` (structure, names, overlaps, limits) and every
//! entry read without a password and with a fixed one (`pw`, which the seeds use), `read_all`
//! with nesting; and the bytes as a message for `zip::package` (attachment split, rebuild).
//! Under small limits, so that bombs stop quickly and every limit check is reached.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::zip::{PackageOptions, Password, ZipReader, package, read_all};

fuzz_target!(|data: &[u8]| {
    let mut limits = Limits::default();
    limits.max_zip_total_bytes = 8 << 20;
    limits.max_zip_ratio = 50;
    limits.max_zip_entries = 64;
    limits.max_zip_nesting = 2;
    let pw = Password::from("pw");
    if let Ok(mut zip) = ZipReader::open(Cursor::new(data), &limits) {
        let _ = zip.is_encrypted();
        for i in 0..zip.entries().len() {
            let _ = zip.read(i, None);
            if let Ok(content) = zip.read(i, Some(&pw)) {
                let size = zip.entries()[i].size;
                assert_eq!(
                    content.len() as u64,
                    size,
                    "read returned a size other than announced"
                );
            }
        }
        // past the end
        let _ = zip.read(zip.entries().len(), Some(&pw));
    }
    let _ = read_all(data, Some(&pw), &limits);
    let _ = package(
        data,
        &pw,
        &PackageOptions::default(),
        &mut Fixed(0),
        &limits,
    );
});

/// A deterministic RNG: the fuzzer must see the same run for the same input.
struct Fixed(u64);

impl rand_core::RngCore for Fixed {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for Fixed {}
