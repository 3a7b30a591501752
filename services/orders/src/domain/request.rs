//! What a customer asks for when placing an order, parsed into values that can only be valid.
//!
//! [`OrderRequest::parse`] checks the shape of a request (ids, counts, ranges, repeated
//! products) and names the offending field as the request spells it (`lines[1].quantity`).
//! Whether the user and products exist, and what they cost, is the order's decision
//! ([`super::order`]), not the request's.

use uuid::Uuid;

/// Most lines an order may have.
pub const MAX_LINES: usize = 100;

/// Most units of one product an order line may ask for.
pub const MAX_QUANTITY: i64 = 1000;

/// Longest payment token accepted, in characters.
pub const MAX_PAYMENT_TOKEN_CHARS: usize = 100;

/// A field of a request that is malformed or out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field's path in the request, e.g. `lines[0].quantity`.
    pub field: String,
    /// What is wrong and what is expected.
    pub reason: String,
}

impl FieldError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// How many units of a product a line asks for: 1 to [`MAX_QUANTITY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(u16);

impl Quantity {
    /// `n` units, if `n` is within 1..=[`MAX_QUANTITY`].
    pub fn parse(n: i64) -> Result<Self, String> {
        if (1..=MAX_QUANTITY).contains(&n) {
            u16::try_from(n)
                .map(Quantity)
                .map_err(|_| format!("must be between 1 and {MAX_QUANTITY}, got {n}"))
        } else {
            Err(format!("must be between 1 and {MAX_QUANTITY}, got {n}"))
        }
    }

    /// The number of units, as the wire's `int`.
    pub fn get(self) -> i32 {
        i32::from(self.0)
    }
}

/// A payment provider's token for how the customer pays: at most
/// [`MAX_PAYMENT_TOKEN_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentToken(String);

impl PaymentToken {
    /// `token`, if it is short enough.
    pub fn parse(token: &str) -> Result<Self, String> {
        let chars = token.chars().count();
        if chars > MAX_PAYMENT_TOKEN_CHARS {
            Err(format!(
                "must be at most {MAX_PAYMENT_TOKEN_CHARS} characters, got {chars}"
            ))
        } else {
            Ok(PaymentToken(token.to_owned()))
        }
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One product of a request and how many of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestedLine {
    /// The product.
    pub product_id: Uuid,
    /// How many units.
    pub quantity: Quantity,
}

/// A well-formed order request: a user, 1 to [`MAX_LINES`] lines each naming a different
/// product, and maybe a payment token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRequest {
    /// The customer.
    pub user_id: Uuid,
    /// What they ask for, in the request's order.
    pub lines: Vec<RequestedLine>,
    /// How they pay; `None` for their default method.
    pub payment_token: Option<PaymentToken>,
}

impl OrderRequest {
    /// Parses a request from its fields as received: `lines` as (product id, quantity)
    /// pairs. The first problem found is reported, naming its field.
    pub fn parse(
        user_id: &str,
        lines: &[(&str, i64)],
        payment_token: Option<&str>,
    ) -> Result<Self, FieldError> {
        let user_id = parse_uuid(user_id).map_err(|reason| FieldError::new("user_id", reason))?;
        if lines.is_empty() || lines.len() > MAX_LINES {
            return Err(FieldError::new(
                "lines",
                format!("must hold 1 to {MAX_LINES} lines, got {}", lines.len()),
            ));
        }
        let mut parsed: Vec<RequestedLine> = Vec::with_capacity(lines.len());
        for (i, (product_id, quantity)) in lines.iter().enumerate() {
            let field = |name: &str| format!("lines[{i}].{name}");
            let product_id = parse_uuid(product_id)
                .map_err(|reason| FieldError::new(field("product_id"), reason))?;
            if let Some(first) = parsed.iter().position(|l| l.product_id == product_id) {
                return Err(FieldError::new(
                    field("product_id"),
                    format!(
                        "product {product_id} is already ordered in lines[{first}]; order it \
                         once with the total quantity"
                    ),
                ));
            }
            let quantity = Quantity::parse(*quantity)
                .map_err(|reason| FieldError::new(field("quantity"), reason))?;
            parsed.push(RequestedLine {
                product_id,
                quantity,
            });
        }
        let payment_token = payment_token
            .map(PaymentToken::parse)
            .transpose()
            .map_err(|reason| FieldError::new("payment_token", reason))?;
        Ok(OrderRequest {
            user_id,
            lines: parsed,
            payment_token,
        })
    }
}

fn parse_uuid(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text).map_err(|_| format!("must be a UUID, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "0190c2a8-7a8e-7cc4-9f3c-000000000001";
    const P1: &str = "0190c2a8-7a8e-7cc4-9f3c-000000000003";
    const P2: &str = "0190c2a8-7a8e-7cc4-9f3c-000000000004";

    fn field_of(result: Result<OrderRequest, FieldError>) -> String {
        result.expect_err("refused").field
    }

    #[test]
    fn a_well_formed_request_is_parsed_in_its_order() {
        let request = OrderRequest::parse(USER, &[(P1, 2), (P2, 1000)], Some("tok_visa")).unwrap();
        assert_eq!(request.user_id.to_string(), USER);
        assert_eq!(request.lines.len(), 2);
        assert_eq!(request.lines[0].product_id.to_string(), P1);
        assert_eq!(request.lines[1].quantity.get(), 1000);
        assert_eq!(request.payment_token.unwrap().as_str(), "tok_visa");
    }

    #[test]
    fn a_user_id_that_is_not_a_uuid_is_named() {
        assert_eq!(
            field_of(OrderRequest::parse("bob", &[(P1, 1)], None)),
            "user_id"
        );
    }

    #[test]
    fn an_order_without_lines_or_with_too_many_is_refused() {
        assert_eq!(field_of(OrderRequest::parse(USER, &[], None)), "lines");
        let ids: Vec<String> = (0..=MAX_LINES)
            .map(|_| Uuid::now_v7().to_string())
            .collect();
        let lines: Vec<(&str, i64)> = ids.iter().map(|id| (id.as_str(), 1)).collect();
        assert_eq!(field_of(OrderRequest::parse(USER, &lines, None)), "lines");
        assert!(OrderRequest::parse(USER, &lines[..MAX_LINES], None).is_ok());
    }

    #[test]
    fn a_quantity_outside_one_to_a_thousand_is_named_by_its_line() {
        for bad in [0, -1, 1001] {
            assert_eq!(
                field_of(OrderRequest::parse(USER, &[(P1, 1), (P2, bad)], None)),
                "lines[1].quantity"
            );
        }
    }

    #[test]
    fn a_product_id_that_is_not_a_uuid_is_named_by_its_line() {
        assert_eq!(
            field_of(OrderRequest::parse(USER, &[(P1, 1), ("x", 1)], None)),
            "lines[1].product_id"
        );
    }

    #[test]
    fn a_product_ordered_twice_is_named_at_its_repetition() {
        let error = OrderRequest::parse(USER, &[(P1, 1), (P2, 1), (P1, 2)], None).unwrap_err();
        assert_eq!(error.field, "lines[2].product_id");
        assert!(error.reason.contains("lines[0]"), "{error}");
    }

    #[test]
    fn a_payment_token_longer_than_a_hundred_characters_is_refused() {
        let long = "t".repeat(MAX_PAYMENT_TOKEN_CHARS + 1);
        assert_eq!(
            field_of(OrderRequest::parse(USER, &[(P1, 1)], Some(&long))),
            "payment_token"
        );
        let longest = "t".repeat(MAX_PAYMENT_TOKEN_CHARS);
        assert!(OrderRequest::parse(USER, &[(P1, 1)], Some(&longest)).is_ok());
    }

    #[test]
    fn quantities_are_one_to_a_thousand() {
        assert_eq!(Quantity::parse(1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::parse(1000).map(Quantity::get), Ok(1000));
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(i64::MAX).is_err());
    }
}
