//! What `compare` writes: a Markdown table (stdout, pasteable into docs/lab.md), JSON, and an
//! SVG chart.
//!
//! The chart is written by hand: two panels of horizontal bars are forty lines of SVG, where a
//! plotting crate would add a large dependency tree (and font handling) to the service's build.

use std::fmt::Write as _;

use super::row::Row;

pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| strategy | requests/s | p50 ms | p99 ms | issued | oversold | duplicates | errors | final quantity | claims stored | tries/request |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let quantity = r.final_quantity.map_or_else(|| "-".to_owned(), |q| q.to_string());
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.1} | {:.1} | {} | {} | {} | {} | {} ({}) | {} | {:.2} |",
            r.strategy,
            r.requests_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.issued,
            r.oversold,
            r.duplicates,
            r.errors,
            quantity,
            r.store_name(),
            r.stored,
            r.tries_per_request,
        );
    }
    out
}

impl Row {
    fn store_name(&self) -> &'static str {
        match self.store {
            crate::Store::Postgres => "pg",
            crate::Store::Redis => "redis",
        }
    }
}

const ROW_H: f64 = 30.0;
const TOP: f64 = 70.0;
const LABEL_W: f64 = 170.0;
const PANEL_W: f64 = 330.0;
const GAP: f64 = 110.0;

pub fn svg(rows: &[Row], subtitle: &str) -> String {
    let height = TOP + ROW_H * rows.len() as f64 + 40.0;
    let width = LABEL_W + 2.0 * PANEL_W + GAP + 200.0; // room for the longest label
    let left = LABEL_W;
    let right = LABEL_W + PANEL_W + GAP;
    let max_rps = rows.iter().map(|r| r.requests_per_sec).fold(1.0, f64::max);
    let n = rows.first().map_or(1, |r| r.n) as f64;
    let max_issued = rows.iter().map(|r| r.issued as f64).fold(n, f64::max);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="16" font-weight="bold">coupon-issuer strategy lab: the same spike, eight strategies</text>"#
    );
    let _ = writeln!(s, r##"<text x="10" y="40" fill="#555">{}</text>"##, escape(subtitle));
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="{}" font-weight="bold">requests/s</text>"#,
        TOP - 10.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{right}" y="{}" font-weight="bold">issued (N = {n}; red: oversold)</text>"#,
        TOP - 10.0
    );
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let bar_y = y + 4.0;
        let bar_h = ROW_H - 10.0;
        let text_y = y + ROW_H / 2.0 + 3.0;
        let _ = writeln!(s, r#"<text x="10" y="{text_y}">{}</text>"#, r.strategy);
        let w = PANEL_W * r.requests_per_sec / max_rps;
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{bar_y}" width="{w:.1}" height="{bar_h}" fill="#4a78c2"/><text x="{:.1}" y="{text_y}">{:.0}</text>"##,
            left + w + 4.0,
            r.requests_per_sec
        );
        let within = (r.issued as f64).min(n);
        let over = r.issued as f64 - within;
        let w_in = PANEL_W * within / max_issued;
        let w_over = PANEL_W * over / max_issued;
        let _ = writeln!(
            s,
            r##"<rect x="{right}" y="{bar_y}" width="{w_in:.1}" height="{bar_h}" fill="#3c9a5f"/>"##
        );
        if over > 0.0 {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{bar_y}" width="{w_over:.1}" height="{bar_h}" fill="#d33c3c"/>"##,
                right + w_in
            );
        }
        let mut label = r.issued.to_string();
        if r.duplicates > 0 {
            let _ = write!(label, " ({} users twice)", r.duplicates);
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{text_y}">{label}</text>"#,
            right + w_in + w_over + 4.0
        );
    }
    let n_x = right + PANEL_W * n / max_issued;
    let bottom = TOP + ROW_H * rows.len() as f64;
    let _ = writeln!(
        s,
        r##"<line x1="{n_x:.1}" y1="{}" x2="{n_x:.1}" y2="{bottom}" stroke="#222" stroke-dasharray="4 3"/>"##,
        TOP - 4.0
    );
    let _ = writeln!(s, "</svg>");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
