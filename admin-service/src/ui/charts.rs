//! Charts as server-side SVG drawn by `plotters`: bars for one series, lines for several.

use plotters::prelude::*;

/// A chart that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("chart: {0}")]
pub struct ChartError(String);

/// One named series of values, one per label.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Values, in label order.
    pub values: Vec<f64>,
}

const SIZE: (u32, u32) = (720, 300);

/// An SVG chart of `series` over `labels`: one series as bars, several as lines with a legend.
pub fn chart(title: &str, labels: &[String], series: &[Series<'_>]) -> Result<String, ChartError> {
    let mut svg = String::new();
    draw(&mut svg, title, labels, series).map_err(|e| ChartError(e.to_string()))?;
    Ok(svg)
}

fn draw(
    svg: &mut String,
    title: &str,
    labels: &[String],
    series: &[Series<'_>],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max * 1.15 } else { 1.0 };
    let n = u32::try_from(labels.len().max(1))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d((0u32..n).into_segmented(), 0f64..top)?;
    let label_of = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(labels.len().max(1))
        .x_label_formatter(&label_of)
        .draw()?;
    if let [only] = series {
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(Palette99::pick(0).filled())
                .margin(8)
                .data(
                    only.values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (u32::try_from(i).unwrap_or(u32::MAX), *v)),
                ),
        )?;
    } else {
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(SegmentValue<u32>, f64)> = s
                .values
                .iter()
                .enumerate()
                .map(|(j, v)| {
                    (
                        SegmentValue::CenterOf(u32::try_from(j).unwrap_or(u32::MAX)),
                        *v,
                    )
                })
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(s.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_bars_and_lines_as_svg_with_escaped_labels() {
        let labels = vec!["gpt-4o".to_string(), "<b>".to_string()];
        let bars = chart(
            "Requests",
            &labels,
            &[Series {
                name: "requests",
                values: vec![3.0, 1.0],
            }],
        )
        .expect("bars");
        assert!(bars.starts_with("<svg") && bars.contains("gpt-4o") && !bars.contains("<b>"));
        let lines = chart(
            "Revenue vs cost",
            &labels,
            &[
                Series {
                    name: "revenue",
                    values: vec![1.0, 2.0],
                },
                Series {
                    name: "token cost",
                    values: vec![0.5, 0.7],
                },
            ],
        )
        .expect("lines");
        assert!(lines.contains("revenue") && lines.contains("<circle"));
    }
}
