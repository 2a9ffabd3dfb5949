//! `vector_search`: the 10 nearest documents by `<->`. The statement text is the same whether
//! `embedding` is pgvector's `vector` or the demo schema's float8[] (with the setup's operator);
//! only the parameter's wire encoding differs, chosen from the type the server reports.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::{failed, timed, Outcome, PrepareError};
use crate::class::Class;
use crate::rng::Rng;

pub struct VectorSearch {
    stmt: Statement,
    dims: usize,
}

impl VectorSearch {
    pub async fn prepare(client: &Client) -> Result<Self, PrepareError> {
        let dims_row = client
            .query_one(
                "SELECT coalesce((SELECT array_length(string_to_array(trim(both '[]{}' from embedding::text), ','), 1) \
                 FROM documents WHERE embedding IS NOT NULL LIMIT 1), 4)",
                &[],
            )
            .await
            .map_err(failed("read the embedding dimension"))?;
        let dims: i32 = dims_row.get(0);
        let stmt = client
            .prepare("SELECT doc_id FROM documents ORDER BY embedding <-> $1 LIMIT 10")
            .await
            .map_err(failed("prepare vector_search (no `<->` for documents.embedding? add `--scenario setup`)"))?;
        Ok(VectorSearch { stmt, dims: dims.max(1) as usize })
    }

    pub async fn run(&self, client: &Client, rng: &mut Rng) -> Outcome {
        let query = Embedding((0..self.dims).map(|_| rng.unit()).collect());
        Outcome::of(Class::VectorSearch, timed(client.query(&self.stmt, &[&query])).await)
    }
}

/// A query vector that binds as float8[] or, for pgvector, in `vector`'s binary format
/// (int16 dimensions, int16 unused, then float4s, all big-endian).
#[derive(Debug)]
pub struct Embedding(pub Vec<f64>);

impl ToSql for Embedding {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if ty.name() == "vector" {
            out.put_u16(u16::try_from(self.0.len())?);
            out.put_u16(0);
            for v in &self.0 {
                out.put_f32(*v as f32);
            }
            Ok(IsNull::No)
        } else {
            self.0.to_sql(ty, out)
        }
    }

    fn accepts(ty: &Type) -> bool {
        ty.name() == "vector" || <Vec<f64> as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}
