//! The availability chart as an SVG image (`chaosctl availability --svg FILE`), drawn with
//! plotters' SVG backend: a title (range, step, muted types), one row of coloured rectangles
//! per probe with its label on the left and its availability on the right, a time axis with
//! ticks at round times, a legend and the downtimes that touched the range.
//!
//! plotters is built without a font feature: it estimates text sizes for its layout and the
//! SVG carries text as `<text>` elements for the viewer to set, so no font files are needed.

use std::path::Path;

use chaos_availability::range::CellState;
use chaos_def::api::AvailabilityRange;
use jiff::tz::TimeZone;
use plotters::coord::Shift;
use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{STATES, TimeFormat, downtimes, label, muted_text, percent, runs, state_name, state_rgb, title};

const WIDTH: u32 = 1000;
const ROW_PX: u32 = 24;
const CAPTION_PX: u32 = 40;
const AXIS_PX: u32 = 30;
const FOOTER_LINE_PX: u32 = 20;
const PERCENT_PX: u32 = 80;
/// A generous width per label character at 13 px (there is no font to measure with).
const LABEL_CHAR_PX: u32 = 8;
const FONT: &str = "sans-serif";
/// Sizes as plotters takes them (it writes them divided by 1.24: 16 is a 13 px font).
const LABEL_SIZE: u32 = 16;
const FOOTER_SIZE: u32 = 15;
/// At most this many ticks on the time axis.
const MAX_TICKS: i64 = 8;

/// Writes the chart of `range` to `path`, times shown in `tz`.
pub fn write(range: &AvailabilityRange, tz: TimeZone, path: &Path) -> anyhow::Result<()> {
    let svg = render(range, tz)?;
    std::fs::write(path, svg).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// The chart of `range` as an SVG document.
pub fn render(range: &AvailabilityRange, tz: TimeZone) -> anyhow::Result<String> {
    let time = TimeFormat::for_range(range.from, range.to, range.step, tz);
    let rows = range.probes.len().max(1) as u32;
    let footer_lines = 2 + downtimes(range).len() as u32;
    let chart_height = CAPTION_PX + rows * ROW_PX + AXIS_PX + 10;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, chart_height + footer_lines * FOOTER_LINE_PX + 10))
            .into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let (upper, footer) = root.split_vertically(chart_height);
        draw_rows(&upper, range, &time)?;
        draw_footer(&footer, range, &time)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn drawing(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the SVG: {error}")
}

fn colour(state: CellState) -> RGBColor {
    let (r, g, b) = state_rgb(state);
    RGBColor(r, g, b)
}

fn text_style(size: u32, h: HPos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&BLACK).pos(Pos::new(h, VPos::Center))
}

/// The title, the time axis, and per probe its label, its rectangles and its availability.
fn draw_rows(
    area: &DrawingArea<SVGBackend, Shift>,
    range: &AvailabilityRange,
    time: &TimeFormat,
) -> anyhow::Result<()> {
    let longest = range.probes.iter().map(|probe| label(probe).chars().count()).max().unwrap_or(0) as u32;
    let rows = range.probes.len().max(1);
    let x_range = (range.from..range.to).with_key_points(ticks(range.from, range.to, &time.tz));
    let mut chart = ChartBuilder::on(area)
        .caption(title(range, time), (FONT, 20))
        .margin(10)
        .x_label_area_size(AXIS_PX)
        .y_label_area_size(longest * LABEL_CHAR_PX + 12)
        .right_y_label_area_size(PERCENT_PX)
        .build_cartesian_2d(x_range, 0f64..rows as f64)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|at| time.short(*at))
        .label_style((FONT, 15))
        .draw()
        .map_err(drawing)?;
    for (i, probe) in range.probes.iter().enumerate() {
        // Row 0 at the top: the y axis grows upwards.
        let bottom = (rows - i - 1) as f64;
        let rectangles = runs(&probe.steps).into_iter().map(|(start, end, state)| {
            Rectangle::new([(start, bottom + 0.15), (end, bottom + 0.85)], colour(state).filled())
        });
        chart.draw_series(rectangles).map_err(drawing)?;
        // `area` is the top of the image, so its coordinates are the backend's.
        let (left, middle) = chart.backend_coord(&(range.from, bottom + 0.5));
        let (right, _) = chart.backend_coord(&(range.to, bottom + 0.5));
        let name = Text::new(label(probe), (left - 8, middle), text_style(LABEL_SIZE, HPos::Right));
        area.draw(&name).map_err(drawing)?;
        let availability =
            Text::new(percent(probe.total.availability), (right + 10, middle), text_style(LABEL_SIZE, HPos::Left));
        area.draw(&availability).map_err(drawing)?;
    }
    Ok(())
}

/// The legend on one line, the muted types on the next, then one line per downtime that
/// touched the range.
fn draw_footer(
    area: &DrawingArea<SVGBackend, Shift>,
    range: &AvailabilityRange,
    time: &TimeFormat,
) -> anyhow::Result<()> {
    let line = FOOTER_LINE_PX as i32;
    let mut x = 20;
    for state in STATES {
        let square = Rectangle::new([(x, line / 2 - 6), (x + 12, line / 2 + 6)], colour(state).filled());
        area.draw(&square).map_err(drawing)?;
        let name = state_name(state);
        area.draw(&Text::new(name, (x + 18, line / 2), text_style(FOOTER_SIZE, HPos::Left))).map_err(drawing)?;
        x += 18 + name.len() as i32 * 7 + 24;
    }
    let muted = format!("Muted Downtime types: {}", muted_text(&range.muted));
    area.draw(&Text::new(muted, (20, line + line / 2), text_style(FOOTER_SIZE, HPos::Left))).map_err(drawing)?;
    for (i, downtime) in downtimes(range).iter().enumerate() {
        let muted = if range.muted.contains(&downtime.kind) { "muted" } else { "not muted" };
        let text = format!(
            "Downtime {} ({}, {muted}): {} → {}",
            downtime.name,
            downtime.kind,
            time.long(downtime.start),
            time.end_of(downtime.start, downtime.end)
        );
        let y = line * (i as i32 + 2) + line / 2;
        area.draw(&Text::new(text, (20, y), text_style(FOOTER_SIZE, HPos::Left))).map_err(drawing)?;
    }
    Ok(())
}

/// Ticks at round times (whole minutes, hours, days in `tz`), at most [`MAX_TICKS`] of them.
pub fn ticks(from: i64, to: i64, tz: &TimeZone) -> Vec<i64> {
    const LADDER: [i64; 17] = [
        30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800, 1_209_600,
        2_592_000,
    ];
    let length = to - from;
    let interval = LADDER
        .into_iter()
        .find(|interval| length / interval <= MAX_TICKS)
        .unwrap_or_else(|| (length / MAX_TICKS).max(1));
    // Round in local time: a tick every 6 hours falls on 00:00, 06:00… where the chart is read.
    let offset = jiff::Timestamp::from_second(from).map(|at| i64::from(tz.to_offset(at).seconds())).unwrap_or(0);
    let first = (from + offset).div_euclid(interval) * interval - offset;
    let first = if first < from { first + interval } else { first };
    (0..).map(|i| first + i * interval).take_while(|&tick| tick <= to).collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{T0, sample};
    use super::*;

    #[test]
    fn the_svg_of_a_known_range_has_its_labels_colours_and_axis() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("availability.svg");
        write(&sample(), TimeZone::UTC, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        let texts = texts(&svg);
        for text in ["synthetic/http", "control-plane/apiserver", "83.33%", "-", "14:00", "14:10"] {
            assert!(texts.contains(&text), "{text:?} is not among {texts:?}");
        }
        assert_eq!(texts[0], "Availability 2026-01-02 14:00 → 14:10 UTC (10m), step 1m");
        assert!(
            texts.contains(&"Muted Downtime types: Maintenance, InfrastructureMaintenance, InfrastructureAccident")
        );
        assert!(texts.contains(&"Downtime upgrade (Maintenance, muted): 2026-01-02 14:06 → 14:08"), "{texts:?}");
        for state in STATES {
            let (r, g, b) = state_rgb(state);
            let hex = format!("fill=\"#{r:02X}{g:02X}{b:02X}\"");
            assert!(svg.contains(&hex), "the colour of {state:?} ({hex}) is missing");
            assert!(texts.contains(&state_name(state)), "{state:?} is not in the legend");
        }
    }

    /// What the `<text>` elements say, in order.
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .filter_map(|element| Some(element.split_once('>')?.1.split_once("</text>")?.0.trim()))
            .collect()
    }

    #[test]
    fn an_empty_range_still_draws() {
        let mut range = sample();
        range.probes.clear();
        let svg = render(&range, TimeZone::UTC).unwrap();
        assert!(svg.starts_with("<svg"));
    }

    #[test]
    fn ticks_fall_on_round_times() {
        assert_eq!(ticks(T0 + 17, T0 + 3617, &TimeZone::UTC), (1..=6).map(|i| T0 + i * 600).collect::<Vec<_>>());
        assert_eq!(ticks(T0, T0 + 600, &TimeZone::UTC), (0..=5).map(|i| T0 + i * 120).collect::<Vec<_>>());
        let week = ticks(T0, T0 + 7 * 86_400, &TimeZone::UTC);
        assert_eq!(week.len(), 7);
        assert!(week.iter().all(|tick| tick % 86_400 == 0), "{week:?}");
        let plus_two = TimeZone::fixed(jiff::tz::offset(2));
        assert!(ticks(T0, T0 + 7 * 86_400, &plus_two).iter().all(|tick| (tick + 7200) % 86_400 == 0));
    }
}
