//! Resource quantities (`k8s.io/apimachinery/pkg/api/resource/quantity.go`):
//! `<signedNumber><suffix>` with binary (`Ki`..`Ei`), decimal (`m`, `k`..`E`)
//! or exponent (`e3`) suffixes. The real API rejects a malformed quantity
//! while decoding the object (400), so [`parse`] gives that message; the
//! value is an `f64`, enough to compare requests and limits in the lab.

/// What the real decoder says of a malformed quantity.
pub const QUANTITY_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// The value of a quantity, or `Err(QUANTITY_ERROR)`.
pub fn parse(s: &str) -> Result<f64, &'static str> {
    let s = s.trim();
    let split = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let digits = number.trim_start_matches(['+', '-']);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return Err(QUANTITY_ERROR);
    }
    let value: f64 = number.parse().map_err(|_| QUANTITY_ERROR)?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().map_err(|_| QUANTITY_ERROR)?;
            10f64.powi(e)
        }
        _ => return Err(QUANTITY_ERROR),
    };
    Ok(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_as_kubernetes_writes_them() {
        assert_eq!(parse("1Gi"), Ok(1024f64.powi(3)));
        assert_eq!(parse("500m"), Ok(0.5));
        assert_eq!(parse("2"), Ok(2.0));
        assert_eq!(parse("1.5G"), Ok(1.5e9));
        assert_eq!(parse("1e3"), Ok(1000.0));
        assert_eq!(parse("-1"), Ok(-1.0));
        assert_eq!(parse("1Gb"), Err(QUANTITY_ERROR));
        assert_eq!(parse("Gi"), Err(QUANTITY_ERROR));
        assert_eq!(parse(""), Err(QUANTITY_ERROR));
        assert_eq!(parse("1.2.3"), Err(QUANTITY_ERROR));
    }
}
