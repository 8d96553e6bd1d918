# Writes the documents the policy tests inspect, into the directory given as argv[1].
# Only Python's standard library: zipfile for OOXML/ODF/ZIP, zlib for the PDF content stream,
# gzip and tarfile, and hand-built OLE compound files, PE, ELF and PNG headers.
import gzip
import io
import os
import struct
import sys
import tarfile
import zipfile
import zlib

out = sys.argv[1]


def path(name):
    return os.path.join(out, name)


CT_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
RELS = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="{main}"/></Relationships>'


def core(creator, modified_by="Somebody", title="Quarterly"):
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cp:coreProperties '
            'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>%s</dc:title><dc:creator>%s</dc:creator>'
            '<cp:lastModifiedBy>%s</cp:lastModifiedBy></cp:coreProperties>' % (title, creator, modified_by))


APP = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
       '<Application>Microsoft Office Word</Application><Company>ACME Holdings</Company></Properties>')


def docx_bytes(text, creator="Alice Writer", extra=None):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CT_HEAD + '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>')
        z.writestr("_rels/.rels", RELS.format(main="word/document.xml"))
        # A keyword split over two runs, as Word writes it after an edit.
        runs = "".join('<w:r><w:t xml:space="preserve">%s</w:t></w:r>' % part for part in text)
        z.writestr("word/document.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p>%s</w:p><w:p><w:r><w:t>Second paragraph.</w:t></w:r></w:p></w:body></w:document>' % runs)
        z.writestr("docProps/core.xml", core(creator))
        z.writestr("docProps/app.xml", APP)
        if extra:
            for name, data in extra.items():
                z.writestr(name, data)
    return b.getvalue()


def xlsx_bytes(cells, creator="Finance Controlling"):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CT_HEAD + '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
        z.writestr("_rels/.rels", RELS.format(main="xl/workbook.xml"))
        z.writestr("xl/workbook.xml", '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets><sheet name="S" sheetId="1"/></sheets></workbook>')
        sst = "".join("<si><t>%s</t></si>" % c for c in cells)
        z.writestr("xl/sharedStrings.xml", '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d">%s</sst>' % (len(cells), sst))
        rows = "".join('<c r="A%d" t="s"><v>%d</v></c>' % (i + 1, i) for i in range(len(cells)))
        z.writestr("xl/worksheets/sheet1.xml", '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">%s<c r="B1"><v>4111111111111111</v></c></row></sheetData></worksheet>' % rows)
        z.writestr("docProps/core.xml", core(creator))
    return b.getvalue()


def pptx_bytes(text):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CT_HEAD + '<Override PartName="/ppt/presentation.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"/></Types>')
        z.writestr("_rels/.rels", RELS.format(main="ppt/presentation.xml"))
        z.writestr("ppt/presentation.xml", '<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>')
        z.writestr("ppt/slides/slide1.xml", '<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>%s</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>' % text)
    return b.getvalue()


def odf_bytes(kind, text, creator):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        # ODF: the mimetype member first and stored.
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument." + kind, compress_type=zipfile.ZIP_STORED)
        z.writestr("content.xml", '<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text><text:p>%s</text:p></office:text></office:body></office:document-content>' % text)
        z.writestr("meta.xml", '<?xml version="1.0" encoding="UTF-8"?><office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><office:meta><meta:initial-creator>%s</meta:initial-creator><dc:creator>Editor Two</dc:creator><dc:title>Plan</dc:title></office:meta></office:document-meta>' % creator)
        z.writestr("META-INF/manifest.xml", '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>')
    return b.getvalue()


def pdf_bytes(text, author):
    content = zlib.compress(("BT /F1 12 Tf 72 712 Td (%s) Tj 0 -14 Td [(Second) -250 (line)] TJ ET" % text).encode("latin-1"))
    xmp = ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt><rdf:li xml:lang="x-default">Annual figures</rdf:li></rdf:Alt></dc:title></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R /Metadata 6 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n" % len(xmp) + xmp + b"\nendstream",
        # Info: the author as a UTF-16BE hex string, as many producers write it.
        b"<< /Author <" + ("\ufeff" + author).encode("utf-16-be").hex().encode() + b"> /Producer (hand made) >>",
    ]
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for i, o in enumerate(objs):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % (i + 1) + o + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        pdf += b"%010d 00000 n \n" % off
    pdf += b"trailer\n<< /Size %d /Root 1 0 R /Info 7 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return pdf


def ole_bytes(stream_name, text):
    """A minimal compound file: header, one FAT sector, one directory sector, text sector."""
    sector = 512
    header = bytearray(512)
    header[0:8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"
    struct.pack_into("<HHHH", header, 24, 0x3E, 3, 0xFFFE, 9)
    struct.pack_into("<H", header, 32, 6)
    struct.pack_into("<I", header, 44, 1)  # FAT sectors
    struct.pack_into("<I", header, 48, 1)  # first directory sector
    struct.pack_into("<I", header, 56, 4096)
    struct.pack_into("<I", header, 60, 0xFFFFFFFE)
    struct.pack_into("<I", header, 68, 0xFFFFFFFE)
    struct.pack_into("<I", header, 76, 0)  # DIFAT[0] = sector 0
    for i in range(1, 109):
        struct.pack_into("<I", header, 76 + 4 * i, 0xFFFFFFFF)
    fat = bytearray(b"\xFF" * sector)
    struct.pack_into("<IIII", fat, 0, 0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFE, 0xFFFFFFFE)
    directory = bytearray(sector)

    def entry(i, name, kind, start, size):
        n = (name + "\0").encode("utf-16-le")
        directory[i * 128:i * 128 + len(n)] = n
        struct.pack_into("<HBB", directory, i * 128 + 64, len(n), kind, 1)
        struct.pack_into("<III", directory, i * 128 + 68, 0xFFFFFFFF, 0xFFFFFFFF, 1 if i == 0 else 0xFFFFFFFF)
        struct.pack_into("<II", directory, i * 128 + 116, start, size)

    data = text.encode("utf-16-le")
    entry(0, "Root Entry", 5, 0xFFFFFFFE, 0)
    entry(1, stream_name, 2, 2, len(data))
    body = bytearray(sector)
    body[:len(data)] = data
    return bytes(header + fat + directory + body)


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


write("book.xlsx", xlsx_bytes(["Budget 2027", "Gehalt"]))
write("report.docx", docx_bytes(["Projekt Fal", "ke is confidential"], creator="Finance Team"))
write("slides.pptx", pptx_bytes("Roadmap Orion"))
write("plan.odt", odf_bytes("text", "Geheimprojekt Nordlicht", "Finance Office"))
write("figures.pdf", pdf_bytes("Kundenliste vertraulich", "Finance Reporting"))
write("legacy.doc", ole_bytes("WordDocument", "Legacy secret Zephyr"))
write("legacy.xls", ole_bytes("Workbook", "Sheet"))
write("encrypted.docx", ole_bytes("EncryptedPackage", ""))

# a docx inside a folder inside a zip
inner = docx_bytes(["Operation Bluebird"])
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("readme.txt", "nothing here")
    z.writestr("docs/inner.docx", inner)
write("bundle.zip", b.getvalue())

# zips nested five deep
data = b"deep keyword Marlin"
for i in range(5):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("level%d.%s" % (5 - i, "zip" if i else "txt"), data)
    data = b.getvalue()
write("deep.zip", data)

# a small bomb: 50 MB of zeros
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("zeros.bin", b"\0" * (50 * 1024 * 1024))
write("bomb.zip", b.getvalue())

# corrupt: a docx cut in half
write("broken.docx", docx_bytes(["whatever"])[:300])

# PE, ELF, a shell script without extension, PNG, 7z magic
pe = bytearray(256)
pe[0:2] = b"MZ"
struct.pack_into("<I", pe, 0x3C, 0x80)
pe[0x80:0x84] = b"PE\0\0"
write("invoice.pdf.exe", bytes(pe))
write("tool", b"\x7fELF\x02\x01\x01" + b"\0" * 57)
write("install", b"#!/bin/sh\necho hi\n")
write("photo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + b"\0" * 17)
write("archive.7z", b"7z\xbc\xaf\x27\x1c\0\x04" + b"\0" * 24)

# gzip and tar
write("notes.txt.gz", gzip.compress(b"gzipped keyword Pelican"))
b = io.BytesIO()
with tarfile.open(fileobj=b, mode="w") as t:
    payload = b"IBAN DE89 3704 0044 0532 0130 00"
    info = tarfile.TarInfo("data/bank.txt")
    info.size = len(payload)
    t.addfile(info, io.BytesIO(payload))
write("bank.tar", b.getvalue())
