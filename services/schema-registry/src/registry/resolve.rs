//! Schemas as the registry needs them: a request's schema parsed with the types it
//! references, stored schemas parsed again for compatibility checks, and lookups by identity.

use std::collections::HashSet;

use apache_avro::Schema;
use sqlx::AnyConnection;

use crate::compat::{self, CompatibilityLevel, Earlier};
use crate::schema::{self, AVRO, ParsedSchema, Reference, SchemaError};
use crate::store::{self, StoredSchema, VersionRow};

use super::{Error, SchemaInput};

/// The stored schema `id`, which a version row promises exists.
pub(super) async fn stored(conn: &mut AnyConnection, id: i64) -> Result<StoredSchema, Error> {
    store::schema(conn, id)
        .await?
        .ok_or_else(|| Error::Inconsistent(format!("a version refers to missing schema {id}")))
}

/// The id of the schema with the same canonical text and references, if registered.
pub(super) async fn find(
    conn: &mut AnyConnection,
    parsed: &ParsedSchema,
    references: &[Reference],
) -> Result<Option<i64>, Error> {
    Ok(store::find_schema(
        conn,
        AVRO,
        &parsed.canonical,
        &parsed.fingerprint,
        references,
    )
    .await?)
}

/// Fails if a live schema references `version` of `subject`.
pub(super) async fn refuse_if_referenced(
    conn: &mut AnyConnection,
    subject: &str,
    version: i64,
) -> Result<(), Error> {
    if store::referencing_schemas(conn, subject, version)
        .await?
        .is_empty()
    {
        Ok(())
    } else {
        Err(Error::Referenced(subject.to_owned(), version))
    }
}

/// Parses a request's schema together with the schemas it references.
pub(super) async fn parse_input(
    conn: &mut AnyConnection,
    input: &SchemaInput,
) -> Result<ParsedSchema, Error> {
    schema::accept_type(input.schema_type.as_deref())?;
    let texts = referenced_texts(conn, &input.references).await?;
    Ok(schema::parse(&input.schema, &texts)?)
}

/// The texts of the schemas `references` name, and of those they reference in turn.
async fn referenced_texts(
    conn: &mut AnyConnection,
    references: &[Reference],
) -> Result<Vec<String>, Error> {
    let mut texts = Vec::new();
    let mut seen = HashSet::new();
    let mut pending = references.to_vec();
    while let Some(reference) = pending.pop() {
        if !seen.insert((reference.subject.clone(), reference.version)) {
            continue;
        }
        let Some(target) = store::schema_at(conn, &reference.subject, reference.version).await?
        else {
            return Err(SchemaError::Invalid(format!(
                "reference '{}' names version {} of subject '{}', which does not exist",
                reference.name, reference.version, reference.subject
            ))
            .into());
        };
        pending.extend(target.references);
        texts.push(target.text);
    }
    Ok(texts)
}

/// The messages of `candidate`'s incompatibilities with the versions `rows`, under `level`.
pub(super) async fn incompatibilities(
    conn: &mut AnyConnection,
    level: CompatibilityLevel,
    candidate: &Schema,
    rows: &[VersionRow],
) -> Result<Vec<String>, Error> {
    let mut schemas = Vec::with_capacity(rows.len());
    for row in rows {
        let target = stored(conn, row.schema_id).await?;
        let texts = referenced_texts(conn, &target.references).await?;
        let parsed = schema::parse(&target.text, &texts).map_err(|error| {
            Error::Inconsistent(format!(
                "stored schema {} does not parse: {error}",
                target.id
            ))
        })?;
        schemas.push((row.version, parsed.resolved));
    }
    let earlier: Vec<Earlier<'_>> = schemas
        .iter()
        .map(|(version, schema)| Earlier {
            version: *version,
            schema,
        })
        .collect();
    Ok(compat::check(level, candidate, &earlier))
}
