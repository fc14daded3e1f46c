//! What the soak prints: Postgres compared with what the clients were shown.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;

use chrono::NaiveDate;
use sqlx::PgPool;
use uuid::Uuid;

use crate::LIMIT;
use crate::load::Ctx;

pub async fn print(ctx: &Ctx, db: &PgPool, minutes: f64, drained: bool) -> anyhow::Result<()> {
    let started = ctx.started.load(Ordering::SeqCst).min(ctx.events.len());
    let events: Vec<Uuid> = ctx.events[..started]
        .iter()
        .map(|e| e.parse())
        .collect::<Result<_, _>>()?;
    let rows: Vec<(String, String, String, NaiveDate, i32)> = sqlx::query_as(
        "SELECT coupon_id::text, event_id::text, user_id, day, seq FROM coupons WHERE event_id = ANY($1)",
    )
    .bind(&events)
    .fetch_all(db)
    .await?;

    let mut per_day: HashMap<(&str, NaiveDate), Vec<i32>> = HashMap::new();
    let mut holders: HashMap<(&str, NaiveDate, &str), u32> = HashMap::new();
    for (_, event, user, day, seq) in &rows {
        per_day.entry((event, *day)).or_default().push(*seq);
        *holders.entry((event, *day, user)).or_default() += 1;
    }
    let oversold: usize = per_day
        .values()
        .map(|seqs| seqs.len().saturating_sub(LIMIT as usize) + seqs.iter().filter(|s| **s > LIMIT as i32).count())
        .sum();
    let gaps: usize = per_day
        .values()
        .map(|seqs| {
            let distinct: HashSet<&i32> = seqs.iter().collect();
            seqs.iter().max().map_or(0, |m| *m as usize) - distinct.len()
        })
        .sum();
    let stored: HashSet<&str> = rows.iter().map(|(c, ..)| c.as_str()).collect();

    let seen = ctx.seen.lock().unwrap();
    let mut shown: HashMap<&str, &str> = HashMap::new(); // coupon -> phase first shown in
    let mut two_coupons = 0;
    let mut after_cut_off = 0;
    for outcomes in seen.values() {
        let ids: HashSet<&str> = outcomes.iter().map(|(_, c, _)| c.as_str()).collect();
        two_coupons += usize::from(ids.len() > 1);
        after_cut_off += usize::from(outcomes.iter().all(|(s, _, _)| *s == 409));
        for (_, coupon, phase) in outcomes {
            shown.entry(coupon).or_insert(phase);
        }
    }
    let duplicates = holders.values().filter(|n| **n > 1).count() + two_coupons;
    let mut lost_by_phase: BTreeMap<&str, usize> = BTreeMap::new();
    for (coupon, phase) in &shown {
        if !stored.contains(coupon) {
            *lost_by_phase.entry(phase).or_default() += 1;
        }
    }
    let lost: usize = lost_by_phase.values().sum();
    let never_acknowledged = stored.iter().filter(|c| !shown.contains_key(*c)).count();

    let answers = ctx.answers.lock().unwrap();
    let mut by_code: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_phase: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for ((phase, label), n) in answers.iter() {
        *by_code.entry(label).or_default() += n;
        *by_phase.entry(phase).or_default().entry(label).or_default() += n;
    }
    let issued = by_code.get("201").copied().unwrap_or(0);

    println!(
        "soak: {minutes} min, 2 instances, {started} drops of {LIMIT} coupons for {} users each",
        crate::USERS
    );
    println!(
        "  requests                          {}",
        ctx.requests.load(Ordering::Relaxed)
    );
    println!("  issued (201)                      {issued}");
    println!("  coupon first shown in a 409       {after_cut_off}  (the 201 was cut off; the retry got it)");
    println!("  stored in Postgres                {}", rows.len());
    println!("  oversold                          {oversold}");
    println!("  duplicates                        {duplicates}");
    println!("  lost (shown to a client, not stored)  {lost}  {lost_by_phase:?}");
    println!("  stored but never acknowledged     {never_acknowledged}");
    println!("  seq numbers skipped               {gaps}");
    println!("  streams drained at the end        {drained}");
    println!("  answers by code:");
    for (label, n) in &by_code {
        println!("    {label:<28} {n}");
    }
    println!("  by phase:");
    for (phase, labels) in &by_phase {
        let line: Vec<String> = labels.iter().map(|(l, n)| format!("{l}: {n}")).collect();
        println!("    {phase:<22} {}", line.join(", "));
    }
    if oversold + duplicates + lost > 0 || !drained {
        anyhow::bail!("the soak found oversold, duplicate or lost coupons, or undrained streams");
    }
    Ok(())
}
