//! The results' charts, drawn as SVG by `plotters`: time to outcome and cost per million orders
//! against the arrival rate, and each service's cost per million orders beside its floor.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::Error;
use crate::cost::Line;
use crate::results::{Percentiles, Rate};

const WIDTH: u32 = 640;
const MEASURED: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const FLOOR: RGBColor = RGBColor(0x99, 0x99, 0x99);

/// A line of the chart: its name in the legend, its colour, its points.
type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

/// Outcome percentiles per arrival rate, with the floor's median beside them.
pub fn outcome_chart(rates: &[Rate], floor_p50_ms: f64) -> Result<String, Error> {
    let at = |pick: fn(&Percentiles) -> f64| -> Vec<(f64, f64)> {
        rates
            .iter()
            .map(|r| (r.rate, pick(&r.outcome_ms)))
            .collect()
    };
    let floor = rates.iter().map(|r| (r.rate, floor_p50_ms)).collect();
    line_chart(
        "Time to outcome (202 to decision)",
        "ms",
        SeriesLabelPosition::UpperLeft,
        vec![
            ("p50", MEASURED, at(|p| p.p50)),
            ("p90", RGBColor(0xff, 0x7f, 0x0e), at(|p| p.p90)),
            ("p99", RGBColor(0xd6, 0x27, 0x28), at(|p| p.p99)),
            ("floor p50", FLOOR, floor),
        ],
    )
}

/// Dollars per million validated orders at each arrival rate (`points`: orders/s, $), beside
/// the floor's, which no rate changes.
pub fn cost_curve_chart(points: &[(f64, f64)], floor: f64) -> Result<String, Error> {
    // The cost falls as the rate rises: the legend goes where no point is.
    line_chart(
        "$ per million validated orders, by arrival rate",
        "$ per million orders",
        SeriesLabelPosition::LowerRight,
        vec![
            ("measured", MEASURED, points.to_vec()),
            (
                "floor",
                FLOOR,
                points.iter().map(|&(x, _)| (x, floor)).collect(),
            ),
        ],
    )
}

/// Lines with a dot at each point, against orders per second, from 0.
fn line_chart(
    caption: &str,
    y_desc: &str,
    legend: SeriesLabelPosition,
    series: Vec<Series>,
) -> Result<String, Error> {
    let points = series.iter().flat_map(|(_, _, p)| p.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let y_max = points.map(|p| p.1).fold(1.0, f64::max) * 1.1;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 360)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("orders per second")
            .y_desc(y_desc)
            .draw()?;
        for (name, colour, points) in series {
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, colour.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(legend)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// One row per service: its dollars per million orders measured (blue) above its floor (grey).
pub fn cost_chart(measured: &[Line], floor: &[Line]) -> Result<String, Error> {
    const ROW: u32 = 34;
    let rows = measured.len().min(floor.len()) as u32;
    let per_million = |lines: &[Line]| lines.iter().map(Line::per_million).sum::<f64>();
    let max = measured
        .iter()
        .chain(floor)
        .map(Line::per_million)
        .fold(1e-9, f64::max)
        * 1.2;
    let items: Vec<&str> = measured.iter().map(|line| line.item).collect();

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 90 + ROW * rows)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!(
            "$ per million validated orders: measured ${:.2} (blue), floor ${:.2} (grey)",
            per_million(measured),
            per_million(floor)
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(230)
            .build_cartesian_2d(0.0..max, (0..rows).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows as usize)
            .y_label_formatter(&|row| match row {
                SegmentValue::CenterOf(i) => items.get(*i as usize).copied().unwrap_or("").into(),
                _ => String::new(),
            })
            .x_desc("$ per million orders")
            .draw()?;
        let bar = |row: u32, value: f64, colour: RGBColor, top: bool| {
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(row)),
                    (value, SegmentValue::Exact(row + 1)),
                ],
                colour.filled(),
            );
            // The upper half of the row for the measured bar, the lower for the floor's.
            if top {
                bar.set_margin(ROW / 2, 3, 0, 0);
            } else {
                bar.set_margin(3, ROW / 2, 0, 0);
            }
            bar
        };
        for (row, (line, floor)) in (0..rows).zip(measured.iter().zip(floor)) {
            chart.draw_series([
                bar(row, line.per_million(), MEASURED, true),
                bar(row, floor.per_million(), FLOOR, false),
            ])?;
            chart.draw_series([Text::new(
                format!("{:.2}", line.per_million()),
                (
                    line.per_million().max(floor.per_million()) + max * 0.01,
                    SegmentValue::CenterOf(row),
                ),
                ("sans-serif", 12),
            )])?;
        }
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percentiles(p50: f64) -> Percentiles {
        Percentiles {
            p50,
            p90: p50 * 2.0,
            p99: p50 * 3.0,
            max: p50 * 4.0,
            count: 100,
        }
    }

    fn rate(rate: f64, p50: f64) -> Rate {
        Rate {
            rate,
            accepted: 100,
            failed: 0,
            undecided: 0,
            validated: 100,
            rejected: 0,
            post_ms: percentiles(10.0),
            outcome_ms: percentiles(p50),
            cost_per_million: 19.5,
        }
    }

    #[test]
    fn the_outcome_chart_draws_every_percentile_and_the_floor() {
        let svg = outcome_chart(
            &[rate(5.0, 300.0), rate(10.0, 350.0), rate(20.0, 500.0)],
            125.0,
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for label in [
            "Time to outcome",
            "orders per second",
            "p50",
            "p90",
            "p99",
            "floor p50",
        ] {
            assert!(svg.contains(label), "{label} missing");
        }
        // Three points per series, four series.
        assert_eq!(svg.matches("<circle").count(), 12);
    }

    #[test]
    fn the_cost_curve_draws_each_rate_and_the_floor() {
        let svg = cost_curve_chart(&[(1.0, 30.0), (10.0, 19.5), (50.0, 16.0)], 13.7).unwrap();
        for label in ["by arrival rate", "measured", "floor", "orders per second"] {
            assert!(svg.contains(label), "{label} missing");
        }
        assert_eq!(svg.matches("<circle").count(), 6);
    }

    #[test]
    fn the_cost_chart_has_a_row_per_service_and_both_totals() {
        let line = |item, unit_price| Line {
            item,
            quantity: 1.0,
            unit_price,
        };
        let measured = [
            line("Lambda requests", 2e-7),
            line("DynamoDB writes", 1.25e-6),
        ];
        let floor = [line("Lambda requests", 1e-7), line("DynamoDB writes", 1e-6)];
        let svg = cost_chart(&measured, &floor).unwrap();
        for label in [
            "Lambda requests",
            "DynamoDB writes",
            "measured $1.45",
            "floor $1.10",
            "1.25",
        ] {
            assert!(svg.contains(label), "{label} missing: {svg}");
        }
        assert_eq!(
            svg.matches("<rect").count() - 1,
            4,
            "a background and two bars per row"
        );
    }
}
