//! A tiny sequence classifier the tests generate: a WordLevel
//! `tokenizer.json` and an ONNX graph embedding → mean over tokens →
//! linear → logits (two classes: benign, injection). Words of an injection
//! pull the mean towards class 1, ordinary words towards class 0.

use tract_onnx::pb;

/// Vocabulary: id → (word, class-0 pull, class-1 pull).
const VOCAB: &[(&str, f32, f32)] = &[
    ("[UNK]", 1.0, 0.0),
    ("ignore", 0.0, 6.0),
    ("previous", 0.0, 6.0),
    ("instructions", 0.0, 6.0),
    ("reveal", 0.0, 6.0),
    ("prompt", 0.0, 6.0),
    ("the", 0.5, 0.5),
    ("quarterly", 4.0, 0.0),
    ("report", 4.0, 0.0),
    ("is", 1.0, 0.0),
    ("attached", 4.0, 0.0),
];

pub fn tokenizer_json() -> String {
    let vocab = VOCAB
        .iter()
        .enumerate()
        .map(|(i, (w, _, _))| format!("{w:?}: {i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
  "normalizer": {{"type": "Lowercase"}}, "pre_tokenizer": {{"type": "Whitespace"}},
  "post_processor": null, "decoder": null,
  "model": {{"type": "WordLevel", "vocab": {{{vocab}}}, "unk_token": "[UNK]"}}}}"#
    )
}

fn tensor_type(elem: pb::tensor_proto::DataType, dims: &[Result<i64, &str>]) -> pb::TypeProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type: elem as i32,
            shape: Some(pb::TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|d| Dimension {
                        value: Some(match d {
                            Ok(v) => Value::DimValue(*v),
                            Err(p) => Value::DimParam(p.to_string()),
                        }),
                        ..Default::default()
                    })
                    .collect(),
            }),
        })),
        ..Default::default()
    }
}

fn floats(name: &str, dims: &[i64], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: data,
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// The ONNX model bytes.
pub fn model_onnx() -> Vec<u8> {
    use pb::tensor_proto::DataType;
    use prost::Message as _;
    let dim = 2i64;
    let emb: Vec<f32> = VOCAB.iter().flat_map(|(_, a, b)| [*a, *b]).collect();
    let graph = pb::GraphProto {
        name: "tiny-classifier".into(),
        node: vec![
            node("Gather", &["emb", "input_ids"], "embedded", vec![]),
            node(
                "ReduceMean",
                &["embedded"],
                "pooled",
                vec![
                    pb::AttributeProto {
                        name: "axes".into(),
                        r#type: pb::attribute_proto::AttributeType::Ints as i32,
                        ints: vec![1],
                        ..Default::default()
                    },
                    pb::AttributeProto {
                        name: "keepdims".into(),
                        r#type: pb::attribute_proto::AttributeType::Int as i32,
                        i: 0,
                        ..Default::default()
                    },
                ],
            ),
            node("MatMul", &["pooled", "w"], "projected", vec![]),
            node("Add", &["projected", "b"], "logits", vec![]),
        ],
        initializer: vec![
            floats("emb", &[VOCAB.len() as i64, dim], emb),
            floats("w", &[dim, 2], vec![1.0, 0.0, 0.0, 1.0]),
            floats("b", &[2], vec![0.0, 0.0]),
        ],
        input: vec![pb::ValueInfoProto {
            name: "input_ids".into(),
            r#type: Some(tensor_type(DataType::Int64, &[Ok(1), Err("tokens")])),
            ..Default::default()
        }],
        output: vec![pb::ValueInfoProto {
            name: "logits".into(),
            r#type: Some(tensor_type(DataType::Float, &[Ok(1), Ok(2)])),
            ..Default::default()
        }],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        producer_name: "asg-tests".into(),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}
