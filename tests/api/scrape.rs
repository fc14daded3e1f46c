//! Reads `/metrics` the way Prometheus does: one sample per line, `name{labels} value`.

use std::collections::BTreeMap;

use reqwest::StatusCode;

use crate::helpers::TestApp;

pub struct Scrape {
    pub text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    pub fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a sample line ends in its value");
                let value: f64 = value.parse().expect("a sample's value is a number");
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, labels(rest.trim_end_matches('}'))),
                    None => (series, BTreeMap::new()),
                };
                (name.to_owned(), labels, value)
            })
            .collect();
        Self { text, samples }
    }

    /// The value of the one sample named `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, v)| *v)
            .collect();
        assert!(
            matching.len() <= 1,
            "{name} {labels:?} matches {} samples",
            matching.len()
        );
        matching.first().copied()
    }

    /// `value`, which must be there.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in\n{}", self.text))
    }

    /// Every sample name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.samples.iter().map(|(n, _, _)| n.as_str())
    }
}

/// `a="x",b="y"` (values in this service never hold quotes or commas).
fn labels(s: &str) -> BTreeMap<String, String> {
    s.split("\",")
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.to_owned(), v.trim_matches('"').to_owned()))
        })
        .collect()
}

pub async fn scrape(app: &TestApp) -> Scrape {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    Scrape::parse(response.text().await.unwrap())
}

/// Scrapes until `done` holds (the writer works in the background), for up to 10 s.
pub async fn scrape_until(app: &TestApp, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let started = std::time::Instant::now();
    loop {
        let scraped = scrape(app).await;
        if done(&scraped) || started.elapsed() > std::time::Duration::from_secs(10) {
            return scraped;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
