//! Stable media ids in the SDP, on top of str0m's random ones.
//!
//! str0m 0.25 picks a random three-letter mid for every m-line and has no way to choose one.
//! Browsers and the XProtect sample expect mids like `0` and `1` (and candidates carrying
//! `sdpMid`). So the offer text is rewritten from str0m's mids to positional ones (`0`, `1`, …)
//! and the answer text back before str0m parses it. The rewrite touches only `a=mid:` and
//! `a=group:BUNDLE` lines. Because the RTP `sdes:mid` header extension would still carry str0m's
//! mid, the engine does not negotiate that extension; receivers demultiplex by the `a=ssrc`
//! lines of the offer instead.

/// The mapping between str0m's mids and the mids on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MidMap {
    /// `(str0m mid, wire mid)` in m-line order.
    pairs: Vec<(String, String)>,
}

impl MidMap {
    /// Renames the mids of `offer` (str0m's text) to their m-line index and returns the new text.
    pub(crate) fn from_offer(offer: &str) -> (Self, String) {
        let mut pairs = Vec::new();
        for line in offer.lines() {
            if let Some(mid) = line.trim_end().strip_prefix("a=mid:") {
                let wire = pairs.len().to_string();
                pairs.push((mid.to_owned(), wire));
            }
        }
        let map = Self { pairs };
        let text = map.rewrite(offer, |(internal, wire)| (internal.as_str(), wire.as_str()));
        (map, text)
    }

    /// Renames the wire mids of `answer` back to str0m's.
    pub(crate) fn answer_to_internal(&self, answer: &str) -> String {
        self.rewrite(answer, |(internal, wire)| {
            (wire.as_str(), internal.as_str())
        })
    }

    /// The wire mid and m-line index of str0m's mid `internal`.
    pub(crate) fn wire(&self, internal: &str) -> Option<(&str, u16)> {
        let index = self.pairs.iter().position(|(i, _)| i == internal)?;
        let wire = self.pairs.get(index)?.1.as_str();
        Some((wire, u16::try_from(index).ok()?))
    }

    fn rewrite<'a>(
        &'a self,
        text: &str,
        direction: impl Fn(&'a (String, String)) -> (&'a str, &'a str),
    ) -> String {
        let rename = |mid: &str| -> String {
            self.pairs
                .iter()
                .map(&direction)
                .find(|(from, _)| *from == mid)
                .map_or_else(|| mid.to_owned(), |(_, to)| to.to_owned())
        };
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let body = line.trim_end_matches(['\r', '\n']);
            let ending = &line[body.len()..];
            if let Some(mid) = body.strip_prefix("a=mid:") {
                out.push_str("a=mid:");
                out.push_str(&rename(mid));
            } else if let Some(mids) = body.strip_prefix("a=group:BUNDLE") {
                out.push_str("a=group:BUNDLE");
                for mid in mids.split_whitespace() {
                    out.push(' ');
                    out.push_str(&rename(mid));
                }
            } else {
                out.push_str(body);
            }
            out.push_str(ending);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\na=group:BUNDLE aBc xY1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:aBc\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:xY1\r\n";

    #[test]
    fn offer_gets_positional_mids_and_answer_gets_them_back() {
        let (map, offer) = MidMap::from_offer(OFFER);
        assert!(offer.contains("a=group:BUNDLE 0 1\r\n"));
        assert!(offer.contains("a=mid:0\r\n") && offer.contains("a=mid:1\r\n"));
        assert!(!offer.contains("aBc"));
        assert_eq!(map.wire("xY1"), Some(("1", 1)));
        assert_eq!(map.answer_to_internal(&offer), OFFER);
    }

    #[test]
    fn unknown_mids_pass_through() {
        let (map, _) = MidMap::from_offer(OFFER);
        let answer = "a=group:BUNDLE 0 7\na=mid:7\n";
        assert_eq!(
            map.answer_to_internal(answer),
            "a=group:BUNDLE aBc 7\na=mid:7\n"
        );
    }
}
