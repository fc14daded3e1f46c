//! Medians of the runs, the table, the JSON and the latency chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use coupon_load_tools::median;
use serde_json::json;

use crate::open_loop::OpenLoopFigures;
use crate::scenario::{Scenario, ScenarioFigures};
use crate::writer::WriterFigures;

/// What the service costs beyond the thin reference server, on the spike.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct ThinRatio {
    service_cpu_us: f64,
    thin_cpu_us: f64,
    /// CPU per request, service over thin.
    cpu: f64,
    /// Requests per second, service over thin.
    throughput: f64,
}

pub struct Report {
    connections: usize,
    duration: u64,
    runs: usize,
    pub ceiling_issue: Vec<f64>,
    pub ceiling_sold_out: Vec<f64>,
    scenarios: BTreeMap<Scenario, Vec<ScenarioFigures>>,
    pub open_loop: Vec<OpenLoopFigures>,
    pub writer: Vec<WriterFigures>,
}

/// Answers that are errors: anything but issued, already issued and sold out, and socket errors.
fn errors(f: &ScenarioFigures) -> u64 {
    let unexpected: u64 = f
        .wrk
        .statuses
        .iter()
        .filter(|(code, _)| !matches!(code.as_str(), "201" | "409" | "410"))
        .map(|(_, n)| n)
        .sum();
    unexpected + f.wrk.socket_errors
}

impl Report {
    pub fn new(connections: &usize, duration: u64, runs: usize) -> Self {
        Self {
            connections: *connections,
            duration,
            runs,
            ceiling_issue: Vec::new(),
            ceiling_sold_out: Vec::new(),
            scenarios: BTreeMap::new(),
            open_loop: Vec::new(),
            writer: Vec::new(),
        }
    }

    pub fn add(&mut self, scenario: Scenario, figures: ScenarioFigures) {
        self.scenarios.entry(scenario).or_default().push(figures);
    }

    pub fn median_rate(&self, scenario: Scenario) -> Option<f64> {
        let runs = self.scenarios.get(&scenario)?;
        Some(median(runs.iter().map(|f| f.wrk.per_second())))
    }

    fn ceiling_for(&self, scenario: Scenario) -> f64 {
        match scenario {
            Scenario::SoldOut => median(self.ceiling_sold_out.iter().copied()),
            _ => median(self.ceiling_issue.iter().copied()),
        }
    }

    pub fn finish(&self, out: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(out)?;
        let table = self.table();
        println!("{table}");
        std::fs::write(out.join("bench.txt"), &table)?;
        std::fs::write(out.join("bench.json"), serde_json::to_string_pretty(&self.json())?)?;
        if let Some(run) = self.median_latency_run() {
            std::fs::write(out.join("latency.svg"), chart(run))?;
        }
        println!("wrote {0}/bench.json, {0}/bench.txt and {0}/latency.svg", out.display());
        Ok(())
    }

    fn median_latency_run(&self) -> Option<&OpenLoopFigures> {
        let mut runs: Vec<&OpenLoopFigures> = self.open_loop.iter().collect();
        runs.sort_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
        runs.get(runs.len() / 2).copied()
    }

    fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "coupon-issuer benchmark: release build; load from wrk -t2 -c{} ({} s runs) and an open-loop \
             generator; medians of {} runs; {} cores shared by generator, service, Redis and Postgres",
            self.connections,
            self.duration,
            self.runs,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
        let _ = writeln!(
            t,
            "Redis ceiling (redis-benchmark, the issue script by EVALSHA, -c{} -P1, new user per call): \
             issue {:.0} calls/s, sold-out {:.0} calls/s\n",
            self.connections,
            median(self.ceiling_issue.iter().copied()),
            median(self.ceiling_sold_out.iter().copied()),
        );
        let _ = writeln!(
            t,
            "{:<11} {:>8} {:>7} {:>7} {:>8} {:>7}  {:<30} {:>6} {:>7} {:>5} {:>7} {:>8} {:>10}  Postgres",
            "scenario",
            "req/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "outcomes (median run)",
            "errors",
            "RSS MiB",
            "CPU",
            "µs/req",
            "/ceiling",
            "writer lag",
        );
        for (scenario, runs) in &self.scenarios {
            let m = |f: fn(&ScenarioFigures) -> f64| median(runs.iter().map(f));
            let rate = m(|f| f.wrk.per_second());
            let typical = runs.iter().min_by(|a, b| {
                (a.wrk.per_second() - rate)
                    .abs()
                    .total_cmp(&(b.wrk.per_second() - rate).abs())
            });
            let outcomes = typical.map_or(String::new(), |f| {
                f.wrk
                    .statuses
                    .iter()
                    .map(|(c, n)| format!("{c}:{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            let lag = m(|f| f.writer_lag_ms.unwrap_or(f64::NAN));
            let postgres = match runs.iter().map(|f| f.postgres_ok).collect::<Option<Vec<bool>>>() {
                Some(all) if all.iter().all(|ok| *ok) => {
                    format!("exact, oversold {}", runs.iter().map(|f| f.oversold).max().unwrap_or(0))
                }
                Some(_) => "MISMATCH".to_owned(),
                None => "-".to_owned(),
            };
            let _ = writeln!(
                t,
                "{:<11} {:>8.0} {:>7.1} {:>7.1} {:>8.1} {:>7.1}  {:<30} {:>6} {:>7.0} {:>5.2} {:>7.1} {:>7.0}% {:>10}  {}",
                scenario.name(),
                rate,
                m(|f| f.wrk.p50_us as f64) / 1000.0,
                m(|f| f.wrk.p99_us as f64) / 1000.0,
                m(|f| f.wrk.p999_us as f64) / 1000.0,
                m(|f| f.wrk.max_us as f64) / 1000.0,
                outcomes,
                runs.iter().map(errors).max().unwrap_or(0),
                m(|f| f.peak_rss_mib),
                m(|f| f.cpu_cores),
                m(|f| f.cpu_us_per_request),
                100.0 * rate / self.ceiling_for(*scenario),
                if lag.is_nan() {
                    "-".to_owned()
                } else {
                    format!("{lag:.0} ms")
                },
                postgres,
            );
        }
        if let Some(ratio) = self.thin_ratio() {
            let _ = writeln!(
                t,
                "service/thin (spike against spike-thin, the same run): CPU per request {:.1} / {:.1} µs = {:.2}x, \
                 throughput {:.2}x",
                ratio.service_cpu_us, ratio.thin_cpu_us, ratio.cpu, ratio.throughput,
            );
        }
        let wrk_cpu: Vec<f64> = self
            .scenarios
            .values()
            .flatten()
            .map(|f| f.wrk.generator_cpu_us)
            .collect();
        if !wrk_cpu.is_empty() {
            let _ = writeln!(
                t,
                "wrk used {:.1} µs of CPU per request (median over every run)",
                median(wrk_cpu)
            );
        }
        if !self.open_loop.is_empty() {
            let m = |f: fn(&OpenLoopFigures) -> f64| median(self.open_loop.iter().map(f));
            let _ = writeln!(
                t,
                "\nopen-loop at {:.0} req/s (half the spike's rate), every request timed from when it was due: \
                 p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms; {} errors; the generator used \
                 {:.0} µs of CPU per request",
                m(|f| f.offered_per_second),
                m(|f| f.p50_ms),
                m(|f| f.p99_ms),
                m(|f| f.p999_ms),
                m(|f| f.max_ms),
                self.open_loop.iter().map(|f| f.errors).max().unwrap_or(0),
                m(|f| f.generator_cpu_us),
            );
        }
        if !self.writer.is_empty() {
            let exact = self
                .writer
                .iter()
                .all(|w| w.stored == w.coupons && w.distinct_users == w.coupons);
            let _ = writeln!(
                t,
                "writer alone: {:.0} coupons/s from a backlog of {} (Postgres {})",
                median(self.writer.iter().map(|w| w.per_second)),
                self.writer[0].coupons,
                if exact { "exact" } else { "MISMATCH" },
            );
        }
        t
    }

    /// The service's spike against the thin server's, from the medians of their runs.
    fn thin_ratio(&self) -> Option<ThinRatio> {
        let cpu = |s: Scenario| {
            let runs = self.scenarios.get(&s)?;
            Some(median(runs.iter().map(|f| f.cpu_us_per_request)))
        };
        let (service_cpu_us, thin_cpu_us) = (cpu(Scenario::Spike)?, cpu(Scenario::Thin)?);
        Some(ThinRatio {
            service_cpu_us,
            thin_cpu_us,
            cpu: service_cpu_us / thin_cpu_us,
            throughput: self.median_rate(Scenario::Spike)? / self.median_rate(Scenario::Thin)?,
        })
    }

    fn json(&self) -> serde_json::Value {
        let scenarios: BTreeMap<&str, &Vec<ScenarioFigures>> =
            self.scenarios.iter().map(|(s, runs)| (s.name(), runs)).collect();
        json!({
            "build": "release",
            "generator": { "closed_loop": format!("wrk -t2 -c{}", self.connections), "open_loop": "the bench's own (hyper)" },
            "connections": self.connections,
            "duration_s": self.duration,
            "runs": self.runs,
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "ceiling": { "issue": self.ceiling_issue, "sold_out": self.ceiling_sold_out },
            "scenarios": scenarios,
            "service_over_thin": self.thin_ratio(),
            "open_loop": self.open_loop,
            "writer": self.writer,
        })
    }
}

/// Latency per second of the open-loop run: p50, p99 and max, as an SVG line chart. Written by
/// hand: three polylines need no charting crate, and the text is left to the viewer's fonts.
fn chart(run: &OpenLoopFigures) -> String {
    let (w, h, left, bottom, top, right) = (800.0, 360.0, 60.0, 40.0, 40.0, 20.0);
    let seconds = run.seconds.len().max(2) as f64;
    let y_max = run.seconds.iter().map(|s| s.max_ms).fold(1.0_f64, f64::max).ceil();
    let x = |i: f64| left + i / (seconds - 1.0) * (w - left - right);
    let y = |ms: f64| h - bottom - ms / y_max * (h - bottom - top);
    let line = |pick: fn(&crate::open_loop::Second) -> f64, colour: &str| {
        let points: Vec<String> = run
            .seconds
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{:.1},{:.1}", x(i as f64), y(pick(s))))
            .collect();
        format!(
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        )
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="20" font-size="14">Issue latency per second, open loop at {:.0} req/s (ms, timed from when each request was due)</text>
<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>
<line x1="{left}" y1="{top}" x2="{left}" y2="{:.1}" stroke="black"/>
"#,
        run.offered_per_second,
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    for i in 0..=4 {
        let ms = y_max * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{ms:.1}</text>"#,
            left - 6.0,
            y(ms) + 4.0
        );
    }
    for (i, _) in run.seconds.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{i}</text>"#,
            x(i as f64),
            h - bottom + 16.0
        );
    }
    svg.push_str(&line(|s| s.max_ms, "#d62728"));
    svg.push_str(&line(|s| s.p99_ms, "#ff7f0e"));
    svg.push_str(&line(|s| s.p50_ms, "#1f77b4"));
    let _ = write!(
        svg,
        r##"
<text x="{0:.1}" y="{1:.1}" fill="#1f77b4">p50</text><text x="{2:.1}" y="{1:.1}" fill="#ff7f0e">p99</text><text x="{3:.1}" y="{1:.1}" fill="#d62728">max</text>
<text x="{4:.1}" y="{5:.1}" text-anchor="middle">second of the run</text>
</svg>
"##,
        w - 200.0,
        top - 6.0,
        w - 150.0,
        w - 100.0,
        (w + left) / 2.0,
        h - 6.0
    );
    svg
}
