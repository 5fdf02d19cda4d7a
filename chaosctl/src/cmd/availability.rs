//! `availability`: asks the apiserver how available the probes were over a range and prints it
//! as a timeline per probe (or the API's answer with `-o json|yaml`), optionally also as an
//! SVG image. The range and the default step are worked out in
//! [`chaosctl::availability::window`], the drawing in [`chaosctl::availability`].

use std::io::IsTerminal as _;

use chaosctl::availability::timeline::{self, TimelineOptions};
use chaosctl::availability::window::{Span, default_step};
use chaosctl::availability::{label_of, svg};
use chaosctl::client::{Client, RangeRequest};
use chaosctl::output::structured;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cli::AvailabilityArgs;

/// The terminal's width when `COLUMNS` does not say.
const DEFAULT_COLUMNS: usize = 100;

/// `availability [--scenario S] [--group G] [--probe P] [--last D | --from T --to T] …`
pub async fn availability(client: &Client, args: AvailabilityArgs) -> anyhow::Result<()> {
    let now = Timestamp::now().as_second();
    let span = Span::resolve(args.last, args.from, args.to, now).map_err(anyhow::Error::msg)?;
    let step = match args.step {
        Some(step) => step,
        None => default_step(span, now, cells(client, &args).await?),
    };
    let request = RangeRequest {
        from: span.from,
        to: span.to,
        step,
        group: args.group,
        probe: args.probe,
        scenario: args.scenario,
        mute: args.mute.map(|muted| muted.0),
    };
    let range = client.availability_range(&request).await?;
    if let Some(path) = &args.svg {
        svg::write(&range, TimeZone::system(), path)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(text) = structured(args.output, &range) {
        print!("{text}");
    } else if range.probes.is_empty() {
        eprintln!("No probes found.");
    } else {
        print!("{}", timeline::render(&range, &TimelineOptions { colour: colour(), tz: TimeZone::system() }));
    }
    Ok(())
}

/// How many cells a row can have: the terminal's width less the labels of the probes that
/// will be shown (asked of the apiserver, as the step must be known before the range is).
async fn cells(client: &Client, args: &AvailabilityArgs) -> anyhow::Result<usize> {
    let groups = client.availability_probes(args.group.as_deref(), args.scenario.as_deref()).await?;
    let lengths = groups
        .groups
        .iter()
        .flat_map(|group| &group.probes)
        .filter(|probe| args.probe.as_ref().is_none_or(|wanted| *wanted == probe.probe))
        .map(|probe| label_of(&probe.group, &probe.probe).chars().count());
    Ok(timeline::cells_for(columns(), timeline::label_width(lengths)))
}

/// The terminal's width, as the shell says in `COLUMNS`.
fn columns() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()).filter(|&c| c > 0).unwrap_or(DEFAULT_COLUMNS)
}

/// Colour only for a terminal, and never when `NO_COLOR` is set (no-color.org).
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
