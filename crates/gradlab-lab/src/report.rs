//! The self-contained `index.html` report: every experiment's claim, checks, tables, verdict and
//! figures (embedded as base64 PNG), then the status of every seed paper.

use crate::error::Result;
use crate::experiment::{Outcome, Verdict};
use crate::registry::{SEED_PAPERS, experiment_ids};
use base64::Engine;
use std::path::{Path, PathBuf};

/// One experiment's entry: its outcome, or the error that stopped it.
pub struct ReportEntry {
    /// Experiment id.
    pub id: String,
    /// Directory holding its figures.
    pub dir: PathBuf,
    /// The result, or the error text.
    pub result: std::result::Result<Outcome, String>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Reproduced => "ok",
        Verdict::Partial => "part",
        Verdict::NotReproduced => "bad",
    }
}

fn section(e: &ReportEntry) -> String {
    let o = match &e.result {
        Err(msg) => {
            return format!(
                "<section><h2>{}</h2><p class=\"bad\">failed: {}</p></section>",
                esc(&e.id),
                esc(msg)
            );
        }
        Ok(o) => o,
    };
    let mut s = format!(
        "<section id=\"{id}\"><h2>{id} <span class=\"verdict {cls}\">{v}</span></h2><p class=\"title\">{t}{ax}</p><p><b>Claim.</b> {c}</p>",
        id = esc(&e.id),
        cls = verdict_class(o.verdict),
        v = o.verdict.label(),
        t = esc(o.paper.title()),
        ax = if o.paper.arxiv.is_empty() {
            String::new()
        } else {
            format!(" (arXiv {})", o.paper.arxiv)
        },
        c = esc(o.paper.claim)
    );
    s.push_str(
        "<table><tr><th></th><th>claim</th><th>measured</th><th></th><th>threshold</th></tr>",
    );
    for c in &o.checks {
        let (measured, threshold) = crate::experiment::fmt_pair(c.measured, c.threshold);
        s.push_str(&format!(
            "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if c.passed { "ok" } else { "bad" },
            if c.passed { "pass" } else { "fail" },
            esc(&c.claim),
            measured,
            c.cmp.symbol(),
            threshold
        ));
    }
    s.push_str("</table>");
    for t in &o.tables {
        s.push_str(&format!("<h3>{}</h3><table><tr>", esc(&t.title)));
        t.columns
            .iter()
            .for_each(|c| s.push_str(&format!("<th>{}</th>", esc(c))));
        s.push_str("</tr>");
        for r in &t.rows {
            s.push_str("<tr>");
            r.iter()
                .for_each(|c| s.push_str(&format!("<td>{}</td>", esc(c))));
            s.push_str("</tr>");
        }
        s.push_str("</table>");
    }
    for f in &o.figures {
        if let Ok(bytes) = std::fs::read(e.dir.join(f)) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            s.push_str(&format!("<figure><img alt=\"{}\" src=\"data:image/png;base64,{b64}\"><figcaption>{}</figcaption></figure>", esc(f), esc(f)));
        }
    }
    for n in &o.notes {
        s.push_str(&format!("<p class=\"note\">{}</p>", esc(n)));
    }
    s.push_str(&format!(
        "<p class=\"meta\">{} mode, seed {}, {:.1} s</p></section>",
        if o.quick { "quick" } else { "full" },
        o.seed,
        o.seconds
    ));
    s
}

/// Write `index.html` into `out_dir`.
pub fn write_index(out_dir: &Path, entries: &[ReportEntry]) -> Result<PathBuf> {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>gradlab report</title><style>\
body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
.verdict{font-size:.7em;padding:.15em .5em;border-radius:.3em;color:#fff}.verdict.ok{background:#2a7}.verdict.part{background:#d90}.verdict.bad{background:#c33}\
td.ok{color:#2a7}td.bad,p.bad{color:#c33}img{max-width:100%}.note,.meta,.title{color:#555}section{border-top:2px solid #eee;margin-top:1.5em}\
</style></head><body><h1>gradlab: the papers' claims, measured here</h1>",
    );
    html.push_str("<table><tr><th>experiment</th><th>verdict</th><th>checks passed</th></tr>");
    for e in entries {
        let (v, n) = match &e.result {
            Ok(o) => (
                format!(
                    "<span class=\"verdict {}\">{}</span>",
                    verdict_class(o.verdict),
                    o.verdict.label()
                ),
                format!(
                    "{}/{}",
                    o.checks.iter().filter(|c| c.passed).count(),
                    o.checks.len()
                ),
            ),
            Err(_) => (
                "<span class=\"verdict bad\">error</span>".into(),
                "–".into(),
            ),
        };
        html.push_str(&format!(
            "<tr><td><a href=\"#{id}\">{id}</a></td><td>{v}</td><td>{n}</td></tr>",
            id = esc(&e.id)
        ));
    }
    html.push_str("</table>");
    entries.iter().for_each(|e| html.push_str(&section(e)));
    html.push_str("<section><h2>All seed papers</h2><table><tr><th>paper</th><th>family</th><th>experiment</th><th>status</th></tr>");
    let done = experiment_ids();
    for p in SEED_PAPERS {
        let status = if done.contains(&p.experiment) {
            "done"
        } else {
            "planned"
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{status}</td></tr>",
            esc(p.title),
            esc(p.family),
            esc(p.experiment)
        ));
    }
    html.push_str("</table></section></body></html>\n");
    let path = out_dir.join("index.html");
    gradlab_train::output::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}
