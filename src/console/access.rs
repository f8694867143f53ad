//! Who may do what on the console: one table ([`allows`]) that both the pages (to hide what a
//! role may not do) and the handlers (to refuse it) ask, so the two never disagree.
//!
//! A refusal is never only a hidden button: a request for an action the role lacks — a forged
//! POST, an old bookmark — is answered 403 and leaves an audit record (`console.forbidden`),
//! written through the node like every other state change.

use serde_json::json;

use crate::config::Role;
use crate::edxml::OrganId;

/// A signed-in person, as the console knows them for the whole session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who they are at the identity provider (`sub`), or the break-glass account's name.
    pub subject: String,
    /// The name shown in the header (with Vietnamese diacritics as the provider sent it).
    pub name: String,
    pub role: Role,
    /// A clerk's agency: the only one whose documents they see and act for.
    pub agency: Option<OrganId>,
    pub via: Via,
}

/// How a person signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Through the province's identity provider (OpenID Connect).
    Oidc,
    /// A local break-glass account (`[[console.local]]`).
    Local,
}

impl Principal {
    /// The actor recorded in the audit chain: `console:<role>:<subject>`, with the agency for a
    /// clerk (`console:van_thu:000.00.00.H21:nguyenvana`) and `local` for break-glass accounts.
    pub fn actor(&self) -> String {
        match (&self.agency, self.via) {
            (_, Via::Local) => format!("console:local:{}", self.subject),
            (Some(a), Via::Oidc) => format!("console:{}:{a}:{}", self.role.as_str(), self.subject),
            (None, Via::Oidc) => format!("console:{}:{}", self.role.as_str(), self.subject),
        }
    }

    /// Whether this person may do `action` (for a clerk, on their own agency's documents: the
    /// handlers scope every query to [`Principal::agency`]).
    pub fn may(&self, action: Action) -> bool {
        allows(self.role, action)
    }
}

/// Everything the console can do, each a row of the access table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Tổng quan.
    ViewOverview,
    /// Văn bản liên thông: the lists and a document's detail.
    ViewDocuments,
    /// Gửi văn bản, Thu hồi, Cập nhật, Thay thế.
    SendDocument,
    /// Tiếp nhận (03), Trả lại (02), Hoàn thành (06), agreeing to / refusing a revocation.
    ReportStatus,
    /// Nhật ký giao nhận.
    ViewDeliveries,
    /// Gửi lại.
    RetryDelivery,
    /// Hủy.
    CancelDelivery,
    /// Nhật ký kiểm toán: browse and export.
    ViewAudit,
    /// Verify the chain from the page.
    VerifyAudit,
    /// Đơn vị liên thông và nút kết nối: read.
    ViewRegistry,
    /// Bind or unbind certificates to agency codes.
    ManageRegistry,
    /// Test a peer's connection.
    TestPeer,
    /// Khóa và chứng thư: read.
    ViewCertificates,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::ViewOverview,
        Action::ViewDocuments,
        Action::SendDocument,
        Action::ReportStatus,
        Action::ViewDeliveries,
        Action::RetryDelivery,
        Action::CancelDelivery,
        Action::ViewAudit,
        Action::VerifyAudit,
        Action::ViewRegistry,
        Action::ManageRegistry,
        Action::TestPeer,
        Action::ViewCertificates,
    ];

    /// The spelling in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewOverview => "view_overview",
            Action::ViewDocuments => "view_documents",
            Action::SendDocument => "send_document",
            Action::ReportStatus => "report_status",
            Action::ViewDeliveries => "view_deliveries",
            Action::RetryDelivery => "retry_delivery",
            Action::CancelDelivery => "cancel_delivery",
            Action::ViewAudit => "view_audit",
            Action::VerifyAudit => "verify_audit",
            Action::ViewRegistry => "view_registry",
            Action::ManageRegistry => "manage_registry",
            Action::TestPeer => "test_peer",
            Action::ViewCertificates => "view_certificates",
        }
    }
}

/// The access table. Clerks work their agency's documents and nothing of the node's;
/// administrators run the node but do not send or receive for an agency; the auditor (Giám sát)
/// reads what administrators read — verifying the chain changes nothing — and changes nothing.
pub fn allows(role: Role, action: Action) -> bool {
    use Action as A;
    match role {
        Role::Clerk => matches!(
            action,
            A::ViewOverview | A::ViewDocuments | A::SendDocument | A::ReportStatus
        ),
        Role::SystemAdmin => matches!(
            action,
            A::ViewOverview
                | A::ViewDocuments
                | A::ViewDeliveries
                | A::RetryDelivery
                | A::CancelDelivery
                | A::ViewAudit
                | A::VerifyAudit
                | A::ViewRegistry
                | A::ManageRegistry
                | A::TestPeer
                | A::ViewCertificates
        ),
        Role::CertificateAdmin => matches!(
            action,
            A::ViewOverview | A::ViewRegistry | A::ManageRegistry | A::ViewCertificates
        ),
        Role::Auditor => matches!(
            action,
            A::ViewOverview
                | A::ViewDocuments
                | A::ViewDeliveries
                | A::ViewAudit
                | A::VerifyAudit
                | A::ViewRegistry
                | A::ViewCertificates
        ),
    }
}

/// The detail of a `console.forbidden` audit record.
pub fn refusal_detail(who: &Principal, action: Action, path: &str, why: &str) -> serde_json::Value {
    json!({
        "role": who.role.as_str(),
        "agency": who.agency.as_ref().map(|a| a.to_string()),
        "action": action.as_str(),
        "path": path,
        "why": why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_administrators_change_the_node_and_only_clerks_act_for_an_agency() {
        for role in Role::ALL {
            for action in Action::ALL {
                let changes_node = matches!(
                    action,
                    Action::RetryDelivery
                        | Action::CancelDelivery
                        | Action::ManageRegistry
                        | Action::TestPeer
                );
                let acts_for_agency = matches!(action, Action::SendDocument | Action::ReportStatus);
                if allows(role, action) && changes_node {
                    assert!(
                        matches!(role, Role::SystemAdmin | Role::CertificateAdmin),
                        "{role:?} may {action:?}"
                    );
                }
                if allows(role, action) && acts_for_agency {
                    assert_eq!(role, Role::Clerk, "{role:?} may {action:?}");
                }
            }
        }
        // The auditor changes nothing at all.
        for action in [
            Action::SendDocument,
            Action::ReportStatus,
            Action::RetryDelivery,
            Action::CancelDelivery,
            Action::ManageRegistry,
            Action::TestPeer,
        ] {
            assert!(!allows(Role::Auditor, action), "{action:?}");
        }
    }

    #[test]
    fn the_actor_names_role_agency_and_subject() {
        let p = Principal {
            subject: "nguyenvana".into(),
            name: "Nguyễn Văn A".into(),
            role: Role::Clerk,
            agency: OrganId::parse_strict("000.00.00.H21").ok(),
            via: Via::Oidc,
        };
        assert_eq!(p.actor(), "console:van_thu:000.00.00.H21:nguyenvana");
        let l = Principal {
            via: Via::Local,
            agency: None,
            role: Role::SystemAdmin,
            subject: "khancap".into(),
            ..p
        };
        assert_eq!(l.actor(), "console:local:khancap");
    }
}
