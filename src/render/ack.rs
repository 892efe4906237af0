//! The acknowledgement of a new report (SPEC §8): an automatic reply in the sense of
//! RFC 3834 that names the report id and never quotes the report.

use super::{finish, message, subject, text_message, Addressing, Gateway, Head, Rendered};

/// Renders the acknowledgement of report `report_public_id` for its reporter.
///
/// `to.in_reply_to` should be the report's Message-ID; `to.reply_to` the reporter's reply
/// address for the report thread.
pub fn acknowledgement(
    gw: &Gateway,
    report_public_id: &str,
    to: &Addressing,
    now_ms: i64,
) -> Rendered {
    let head = Head {
        from_display: gw.name.clone(),
        subject: subject(report_public_id, "Report received"),
        // RFC 3834 §5.1: a response generated automatically to a message.
        auto_submitted: "auto-replied",
        list_token: report_public_id.to_string(),
    };
    // RFC 3834 §3.1.5: In-Reply-To and References name the message responded to; the
    // common header block fills References from In-Reply-To when none are given.
    let builder = message(gw, to, head, now_ms);
    finish(text_message(builder, &body(gw, report_public_id)), to)
}

/// RFC 3834 §3.1.8: the response says what happened, not what was received.
fn body(gw: &Gateway, id: &str) -> String {
    let id = super::phrase(id);
    format!(
        "Thank you for your report. It has been received and filed as {id}.\n\
         \n\
         To add to it (more details, files, your OpenPGP public key), reply to this\n\
         message, or write with \"[{id}]\" in the subject. Only you and the\n\
         coordinators can read the messages about {id}.\n\
         \n\
         The coordinators will read your report and answer you there.\n\
         \n\
         -- \n\
         {}\n\
         This is an automatic reply.\n",
        super::phrase(&gw.name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::notification::tests::{addressing, gateway};
    use mail_parser::MessageParser;

    #[test]
    fn acknowledgement_is_an_rfc3834_auto_reply() {
        let mut to = addressing();
        to.in_reply_to = Some("<report-1@reporter.example>".into());
        to.references = vec![];
        let r = acknowledgement(&gateway(), "VRF#26-11-BCDFG", &to, 0);
        let m = MessageParser::default().parse(&r.bytes).expect("parses");
        assert_eq!(
            m.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        assert_eq!(m.subject(), Some("[VRF#26-11-BCDFG] Report received"));
        assert_eq!(m.in_reply_to().as_text(), Some("report-1@reporter.example"));
        assert_eq!(m.references().as_text(), Some("report-1@reporter.example"));
        assert_eq!(
            m.reply_to()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some("cases+r-abc123@cert.example")
        );
        let from = m.from().and_then(|a| a.first()).expect("from");
        assert_eq!(
            (from.name(), from.address()),
            (Some("CERT Coordination"), Some("cases@cert.example"))
        );
        assert!(m.cc().is_none());
        let text = m.body_text(0).expect("text");
        assert!(text.contains("filed as VRF#26-11-BCDFG"));
        assert!(text.contains("reply to this"));
        assert!(text.contains("coordinators will read your report and answer"));
    }

    #[test]
    fn acknowledgement_without_parent_has_no_threading_headers() {
        let mut to = addressing();
        to.in_reply_to = None;
        to.references = vec![];
        let r = acknowledgement(&gateway(), "VRF#26-11-BCDFG", &to, 0);
        let m = MessageParser::default().parse(&r.bytes).expect("parses");
        assert!(m.header("In-Reply-To").is_none() && m.header("References").is_none());
    }
}
