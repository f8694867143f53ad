//! Realistic sample packages: a dispatch from the Gia Lai Department of Information and
//! Communications to the Nghệ An People's Committee, its revocation, update and replacement, and
//! a status report for each of the nine status codes.
//!
//! Everything is fixed (content ids, dates, timestamps), so writing a sample always gives the
//! same bytes: the fixtures under `tests/data/edxml/` are exactly these samples written, and
//! benchmarks and documentation can use them without inventing their own. The people, phone
//! numbers and addresses are made up.

use time::macros::{date, datetime};

use super::document_id::document_id;
use super::model::*;
use super::organ_id::OrganId;
use super::status::StatusCode;

/// A code of the canonical shape. Only called with this module's constants, all checked by its
/// tests, so the panic cannot be reached from input.
fn id(s: &str) -> OrganId {
    OrganId::parse_strict(s).unwrap_or_else(|e| panic!("sample code {s}: {e}"))
}

/// The sender: Sở Thông tin và Truyền thông tỉnh Gia Lai, `000.00.05.H21`.
pub fn sender() -> Organization {
    Organization {
        organ_id: id("000.00.05.H21"),
        organization_in_charge: Some("Ủy ban nhân dân tỉnh Gia Lai".into()),
        organ_name: "Sở Thông tin và Truyền thông tỉnh Gia Lai".into(),
        organ_add: Some("Thành phố Pleiku, tỉnh Gia Lai".into()),
        email: Some("stttt@gialai.gov.vn".into()),
        telephone: Some("0269 3000 000".into()),
        fax: None,
        website: Some("https://stttt.gialai.gov.vn".into()),
    }
}

/// The recipient: Ủy ban nhân dân tỉnh Nghệ An, `000.00.00.H41`.
pub fn recipient() -> Organization {
    Organization {
        organ_id: id("000.00.00.H41"),
        organization_in_charge: None,
        organ_name: "Ủy ban nhân dân tỉnh Nghệ An".into(),
        organ_add: Some("Thành phố Vinh, tỉnh Nghệ An".into()),
        email: Some("ubnd@nghean.gov.vn".into()),
        telephone: None,
        fax: None,
        website: None,
    }
}

/// The second recipient (for information): Ủy ban nhân dân tỉnh Gia Lai, `000.00.00.H21`.
pub fn second_recipient() -> Organization {
    Organization::new(id("000.00.00.H21"), "Ủy ban nhân dân tỉnh Gia Lai")
}

/// A small but well-formed PDF showing `line` (ASCII), standing in for a signed scan.
pub fn tiny_pdf(line: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 760 Td ({line}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.push_str(&format!("{} 0 obj\n{body}\nendobj\n", i + 1));
    }
    let xref = pdf.len();
    pdf.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for o in offsets {
        pdf.push_str(&format!("{o:010} 00000 n \n"));
    }
    pdf.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    pdf.into_bytes()
}

/// Công văn 123/STTTT-CĐS of 15 March 2024, to Nghệ An (and Gia Lai for information), urgent,
/// with two attachments: the signed dispatch and its appendix.
pub fn new_document() -> DocumentPackage {
    let mut d = DocumentPackage::new(
        sender(),
        vec![recipient(), second_recipient()],
        DocumentCode::new(123, "STTTT-CĐS"),
        date!(2024 - 03 - 15),
        "V/v phối hợp kết nối, liên thông văn bản điện tử giữa hai tỉnh",
        datetime!(2024-03-15 09:30:00),
    );
    let h = &mut d.header;
    h.promulgation_info.place = "Gia Lai".into();
    h.content = Some(
        "Thực hiện Quyết định số 28/2018/QĐ-TTg của Thủ tướng Chính phủ về gửi, nhận văn bản \
         điện tử giữa các cơ quan trong hệ thống hành chính nhà nước, Sở Thông tin và Truyền \
         thông tỉnh Gia Lai đề nghị Ủy ban nhân dân tỉnh Nghệ An phối hợp thử nghiệm kết nối \
         trực tiếp giữa hai hệ thống quản lý văn bản."
            .into(),
    );
    h.signer_info = SignerInfo {
        competence: "KT. GIÁM ĐỐC".into(),
        position: "Phó Giám đốc".into(),
        full_name: "Nguyễn Văn An".into(),
    };
    h.due_date = Some(date!(2024 - 03 - 29));
    h.to_places = vec![
        "Như trên".into(),
        "UBND tỉnh (b/c)".into(),
        "Lưu: VT, CĐS".into(),
    ];
    h.other_info = Some(OtherInfo {
        priority: Priority::Urgent,
        sphere_of_promulgation: Some("Liên thông".into()),
        typer_notation: Some("TTB".into()),
        promulgation_amount: Some(3),
        page_amount: Some(2),
        direction: Some(false),
        appendixes: vec!["Phụ lục I: Danh mục thông số kết nối".into()],
    });
    h.steering_type = Some(SteeringType::NotSteering);
    if let Some(b) = &mut d.business {
        b.staff_info = Some(StaffInfo {
            department: Some("Phòng Chuyển đổi số".into()),
            staff: Some("Trần Thị Bình".into()),
            email: Some("ttbinh@gialai.gov.vn".into()),
            mobile: Some("0900 000 001".into()),
        });
    }
    d.attachments = vec![
        Attachment {
            content_id: "cid:0b0f4e8e-6a52-4d43-9a7e-2f1c3d9b7a01".into(),
            name: "123-STTTT-CĐS.signed.pdf".into(),
            description: "Công văn số 123/STTTT-CĐS (bản ký số)".into(),
            content_type: "application/pdf".into(),
            data: tiny_pdf("Cong van so 123/STTTT-CDS (ban mau)"),
        },
        Attachment {
            content_id: "cid:0b0f4e8e-6a52-4d43-9a7e-2f1c3d9b7a02".into(),
            name: "Phụ lục I.pdf".into(),
            description: "Phụ lục I: Danh mục thông số kết nối".into(),
            content_type: "application/pdf".into(),
            data: tiny_pdf("Phu luc I: Danh muc thong so ket noi (ban mau)"),
        },
    ];
    d
}

/// The DocumentId of [`new_document`].
pub fn new_document_id() -> String {
    document_id(
        &id("000.00.05.H21"),
        date!(2024 - 03 - 15),
        123,
        "STTTT-CĐS",
    )
}

/// Revocation (type 1) of [`new_document`]: the same header, no files.
pub fn revocation() -> DocumentPackage {
    let mut d = DocumentPackage::follow_up(
        &new_document(),
        Business::revocation(
            new_document_id(),
            "Văn bản ký sai thẩm quyền, thu hồi để ban hành lại",
        ),
        datetime!(2024-03-16 08:15:00),
    );
    d.attachments.clear();
    d
}

/// Update (type 2) of [`new_document`]: the recipient list changes (Sở Thông tin và Truyền
/// thông tỉnh Nghệ An is added).
pub fn update() -> DocumentPackage {
    let original = new_document();
    let mut d = DocumentPackage::follow_up(
        &original,
        Business::update(
            new_document_id(),
            "Bổ sung nơi nhận",
            BusinessDocumentInfo {
                document_info: false,
                document_receiver: true,
                receivers: vec![
                    Receiver {
                        organ_id: id("000.00.00.H41"),
                        receiver_type: 1,
                    },
                    Receiver {
                        organ_id: id("000.00.00.H21"),
                        receiver_type: 2,
                    },
                    Receiver {
                        organ_id: id("000.00.13.H41"),
                        receiver_type: 1,
                    },
                ],
            },
        ),
        datetime!(2024-03-16 14:00:00),
    );
    d.header.to.push(Organization::new(
        id("000.00.13.H41"),
        "Sở Thông tin và Truyền thông tỉnh Nghệ An",
    ));
    d
}

/// Replacement (type 3): Công văn 130/STTTT-CĐS of 18 March 2024 replaces [`new_document`] at
/// both recipients.
pub fn replacement() -> DocumentPackage {
    let mut d = DocumentPackage::new(
        sender(),
        vec![recipient(), second_recipient()],
        DocumentCode::new(130, "STTTT-CĐS"),
        date!(2024 - 03 - 18),
        "V/v phối hợp kết nối, liên thông văn bản điện tử giữa hai tỉnh (thay thế Công văn số \
         123/STTTT-CĐS ngày 15/3/2024)",
        datetime!(2024-03-18 10:45:00),
    );
    let own_id = d.header.document_id.clone().unwrap_or_default();
    let original = new_document();
    d.header.promulgation_info.place = "Gia Lai".into();
    d.header.signer_info = SignerInfo {
        competence: "GIÁM ĐỐC".into(),
        position: "Giám đốc".into(),
        full_name: "Lê Thị Hoa".into(),
    };
    d.header.response_for = vec![ResponseFor::for_document(&original)];
    d.business = Some(Business::replacement(
        own_id,
        "Thay thế văn bản ký sai thẩm quyền",
        vec![ReplacementInfo {
            document_id: new_document_id(),
            organ_ids: vec![id("000.00.00.H41"), id("000.00.00.H21")],
        }],
    ));
    d.attachments = vec![Attachment {
        content_id: "cid:6c3a1f52-1d0e-4b8f-8f61-5d2e7c9a4b03".into(),
        name: "130-STTTT-CĐS.signed.pdf".into(),
        description: "Công văn số 130/STTTT-CĐS (bản ký số)".into(),
        content_type: "application/pdf".into(),
        data: tiny_pdf("Cong van so 130/STTTT-CDS (ban mau)"),
    }];
    d
}

/// A status report on [`new_document`] with `code`: from Nghệ An, except 13, which the sender
/// issues.
pub fn status(code: StatusCode) -> StatusPackage {
    let (from, description, minute) = match code {
        StatusCode::Arrived => (recipient(), "Văn bản đã đến hệ thống của đơn vị", 5),
        StatusCode::Rejected => (recipient(), "Trả lại: văn bản gửi nhầm đơn vị nhận", 20),
        StatusCode::Registered => (recipient(), "Đã tiếp nhận, vào sổ văn bản đến số 1024", 25),
        StatusCode::Assigned => (
            recipient(),
            "Đã phân công Sở Thông tin và Truyền thông xử lý",
            40,
        ),
        StatusCode::Processing => (recipient(), "Đang xử lý", 45),
        StatusCode::Finished => (recipient(), "Đã hoàn thành xử lý", 55),
        StatusCode::TakeBackRequested => {
            (sender(), "Đề nghị thu hồi văn bản do ký sai thẩm quyền", 10)
        }
        StatusCode::TakeBackAgreed => (recipient(), "Đồng ý thu hồi văn bản", 30),
        StatusCode::TakeBackRefused => (
            recipient(),
            "Không đồng ý thu hồi: văn bản đã được triển khai thực hiện",
            35,
        ),
        StatusCode::Unassigned(_) => (recipient(), "", 0),
    };
    let mut s = StatusPackage::for_document(
        &new_document(),
        from,
        code,
        description,
        datetime!(2024-03-15 10:00:00) + time::Duration::minutes(minute),
    );
    s.staff_info = Some(if code == StatusCode::TakeBackRequested {
        StaffInfo {
            department: Some("Phòng Chuyển đổi số".into()),
            staff: Some("Trần Thị Bình".into()),
            email: Some("ttbinh@gialai.gov.vn".into()),
            mobile: Some("0900 000 001".into()),
        }
    } else {
        StaffInfo {
            department: Some("Văn phòng".into()),
            staff: Some("Phạm Văn Cường".into()),
            email: None,
            mobile: Some("0900 000 002".into()),
        }
    });
    s
}

/// Every sample with the file stem its fixture has under `tests/data/edxml/`.
pub fn all() -> Vec<(String, Package)> {
    let mut v: Vec<(String, Package)> = vec![
        ("document-new".into(), new_document().into()),
        ("document-revocation".into(), revocation().into()),
        ("document-update".into(), update().into()),
        ("document-replacement".into(), replacement().into()),
    ];
    for c in StatusCode::ASSIGNED {
        v.push((format!("status-{c}"), status(c).into()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_standard() {
        for s in [
            "000.00.05.H21",
            "000.00.00.H41",
            "000.00.00.H21",
            "000.00.13.H41",
        ] {
            assert!(OrganId::parse_strict(s).is_ok());
        }
        assert_eq!(new_document_id(), "000.00.05.H21,2024/03/15,123/STTTT-CĐS");
        assert_eq!(
            new_document().header.document_id.as_deref(),
            Some(new_document_id().as_str())
        );
        assert!(tiny_pdf("x").starts_with(b"%PDF-1.4"));
        assert_eq!(all().len(), 13);
    }
}
