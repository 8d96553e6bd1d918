//! Is the data already compressed? Decided from its bytes, never from its name.

/// Magic numbers of formats that are already compressed (or are archives of compressed data).
const MAGIC: &[(usize, &[u8])] = &[
    (0, b"\xFF\xD8\xFF"),       // JPEG
    (0, b"\x89PNG\r\n\x1a\n"),  // PNG
    (0, b"GIF8"),               // GIF
    (0, b"PK\x03\x04"),         // ZIP, and so docx/xlsx/pptx/odt/jar/epub
    (0, b"PK\x05\x06"),         // empty ZIP
    (0, b"\x1F\x8B"),           // gzip
    (0, b"BZh"),                // bzip2
    (0, b"\xFD7zXZ\x00"),       // xz
    (0, b"7z\xBC\xAF\x27\x1C"), // 7z
    (0, b"\x28\xB5\x2F\xFD"),   // zstd
    (0, b"Rar!\x1A\x07"),       // RAR
    (0, b"OggS"),               // Ogg
    (0, b"fLaC"),               // FLAC
    (0, b"ID3"),                // MP3 with ID3 tag
    (0, b"\x1A\x45\xDF\xA3"),   // Matroska / WebM
    (4, b"ftyp"),               // MP4, MOV, HEIC, M4A
    (8, b"WEBP"),               // WebP (RIFF....WEBP)
    (0, b"\x04\x22\x4D\x18"),   // LZ4 frame
    (0, b"MSCF"),               // CAB
];

/// Whether storing beats deflating: a known compressed format by its magic number, or a
/// sample whose byte entropy is near 8 bits (random, encrypted or compressed data).
pub fn is_compressed(sample: &[u8]) -> bool {
    if MAGIC
        .iter()
        .any(|(at, m)| sample.get(*at..at + m.len()) == Some(m))
    {
        return true;
    }
    if sample.len() < 4096 {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in sample {
        counts[usize::from(b)] += 1;
    }
    let n = sample.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    entropy > 7.95
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs() {
        assert!(is_compressed(b"\xFF\xD8\xFF\xE0\x00\x10JFIF"));
        assert!(is_compressed(b"PK\x03\x04\x14\x00"));
        assert!(is_compressed(b"\x00\x00\x00\x18ftypmp42"));
        assert!(!is_compressed(b"hello world"));
        let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog\n".repeat(200);
        assert!(!is_compressed(&text));
        let mut x = 0x1234_5678_u32;
        let random: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert!(is_compressed(&random));
    }
}
