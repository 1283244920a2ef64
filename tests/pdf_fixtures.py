"""PDFs for the signed-report tests, made here: plain, with active content, encrypted, and signed with
pyHanko by a certificate from a CA made in the test (cryptography)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

TEXT = "Bao cao so 125/BC-UBND ngay 08/05/2024"


def make_pdf(pages: int = 1, catalog_extra: str = "", extra_objects: tuple[str, ...] = (), text: str = TEXT) -> bytes:
    """Return a small valid PDF with ``pages`` pages of text; ``catalog_extra`` is added to the catalog
    dictionary and ``extra_objects`` become objects 4 + pages ... (referenced from ``catalog_extra``)."""
    content = f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode()
    first_page = 4 + len(extra_objects)
    page_ids = [first_page + 2 * i for i in range(pages)]
    objects: list[bytes] = [
        f"<< /Type /Catalog /Pages 2 0 R {catalog_extra} >>".encode(),
        f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *(o.encode() for o in extra_objects),
    ]
    for index in range(pages):
        page = page_ids[index]
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {page + 1} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def with_javascript() -> bytes:
    return make_pdf(catalog_extra="/OpenAction 4 0 R",
                    extra_objects=("<< /Type /Action /S /JavaScript /JS (app.alert\\(1\\)) >>",))


def with_embedded_file() -> bytes:
    return make_pdf(catalog_extra="/Names << /EmbeddedFiles << /Names [(a.exe) 4 0 R] >> >>",
                    extra_objects=("<< /Type /Filespec /F (a.exe) /EF << /F 5 0 R >> >>",
                                   "<< /Type /EmbeddedFile /Length 2 >>\nstream\nMZ\nendstream"))


def with_launch_action() -> bytes:
    return make_pdf(catalog_extra="/OpenAction << /S /Launch /F (cmd.exe) >>")


def with_xfa() -> bytes:
    return make_pdf(catalog_extra="/AcroForm << /Fields [] /XFA 4 0 R >>",
                    extra_objects=("<< /Length 7 >>\nstream\n<xdp/>\nendstream",))


def encrypted() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf())))
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@dataclass(frozen=True)
class Pki:
    ca_pem: Path
    key_pem: Path
    cert_pem: Path


def make_pki(directory: Path, signer_name: str = "Nguyễn Văn An") -> Pki:
    """Make a root CA and a signing certificate it issues (RSA 2048), as PEM files in ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CA thử nghiệm"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "CA thử nghiệm của hệ thống")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "UBND huyện Lục Ngạn"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, signer_name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_cert_sign=False,
                                         crl_sign=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory / "ca.pem", directory / "signer-key.pem", directory / "signer.pem")
    pki.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    return pki


def sign_pdf(data: bytes, pki: Pki) -> bytes:
    """Return ``data`` signed (PAdES baseline, no timestamp, nothing fetched) by the PKI's signing certificate."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    signer = signers.SimpleSigner.load(str(pki.key_pem), str(pki.cert_pem), ca_chain_files=(str(pki.ca_pem),))
    assert signer is not None
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    meta = signers.PdfSignatureMetadata(field_name="ChuKy", subfilter=None)
    out = signers.sign_pdf(writer, meta, signer=signer)
    return out.getvalue()


def rewrite_after_signing(signed: bytes, text: str = "Bao cao so 999/BC-UBND da sua") -> bytes:
    """Return ``signed`` with an incremental update that replaces its first page's text: the signed bytes
    stay as they were, what the page shows does not."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Contents"] = writer.add_object(generic.StreamObject(
        stream_data=f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode()))
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
