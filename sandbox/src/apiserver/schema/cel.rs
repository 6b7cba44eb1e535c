//! A small CEL interpreter for CRD `x-kubernetes-validations` rules: literals, `self`/`oldSelf`,
//! field selection, indexing, `!`, `-`, `&&`, `||`, `? :`, comparisons, `in`, `+`, `has()`,
//! `size()`, `matches()`, `startsWith()`, `endsWith()`, `contains()`, and the `all`, `exists`,
//! `exists_one` macros. Rules using anything else are not evaluated (see the README).

use serde_json::Value;

use crate::apiserver::error::FieldCause;

/// Why a rule could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CelError {
    /// The rule uses syntax or functions this interpreter does not know: it is skipped.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Evaluation failed (e.g. `no such key`), which the apiserver reports as invalid.
    #[error("{0}")]
    Runtime(String),
}

type Result<T> = std::result::Result<T, CelError>;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Int(i64),
    Float(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "(", ")", "[", "]", ",", ".", "?", ":", "+",
    "-", "*", "/", "%", "{", "}",
];

fn tokenize(text: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    s.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    s.push(chars[i]);
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(CelError::Unsupported("unterminated string".into()));
            }
            i += 1;
            tokens.push(Token::Str(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            if i < chars.len() && chars[i] == 'u' {
                i += 1;
            }
            tokens.push(if text.contains('.') {
                Token::Float(
                    text.parse()
                        .map_err(|_| CelError::Unsupported(text.clone()))?,
                )
            } else {
                Token::Int(
                    text.parse()
                        .map_err(|_| CelError::Unsupported(text.clone()))?,
                )
            });
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = OPS
                .iter()
                .find(|op| rest.starts_with(**op))
                .ok_or_else(|| CelError::Unsupported(format!("character {c:?}")))?;
            i += op.len();
            tokens.push(Token::Op(op));
        }
    }
    Ok(tokens)
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Value),
    /// A variable (`self`, `oldSelf`, or a macro variable).
    Var(String),
    /// `e.field`.
    Select(Box<Expr>, String),
    /// `e[i]`.
    Index(Box<Expr>, Box<Expr>),
    /// `[a, b]`.
    List(Vec<Expr>),
    /// Unary operator.
    Unary(&'static str, Box<Expr>),
    /// Binary operator.
    Binary(&'static str, Box<Expr>, Box<Expr>),
    /// `c ? a : b`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// A global function call (`size(x)`, `has(x.f)`).
    Call(String, Vec<Expr>),
    /// A method call (`x.matches(re)`), including macros (`x.all(v, p)`).
    Method(Box<Expr>, String, Vec<Expr>),
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Token::Op(o)) if *o == op) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &str) -> Result<()> {
        if self.eat(op) {
            Ok(())
        } else {
            Err(CelError::Unsupported(format!(
                "expected {op:?} at token {}",
                self.position
            )))
        }
    }

    fn expr(&mut self) -> Result<Expr> {
        let condition = self.binary(0)?;
        if self.eat("?") {
            let then = self.expr()?;
            self.expect(":")?;
            let otherwise = self.expr()?;
            return Ok(Expr::Cond(
                Box::new(condition),
                Box::new(then),
                Box::new(otherwise),
            ));
        }
        Ok(condition)
    }

    fn binary(&mut self, level: usize) -> Result<Expr> {
        const LEVELS: &[&[&str]] = &[
            &["||"],
            &["&&"],
            &["==", "!=", "<", "<=", ">", ">=", "in"],
            &["+", "-"],
            &["*", "/", "%"],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        loop {
            let op = match self.peek() {
                Some(Token::Op(op)) if LEVELS[level].contains(op) => *op,
                Some(Token::Ident(word)) if word == "in" && LEVELS[level].contains(&"in") => "in",
                _ => return Ok(left),
            };
            self.position += 1;
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.eat("!") {
            return Ok(Expr::Unary("!", Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Expr::Unary("-", Box::new(self.unary()?)));
        }
        self.member()
    }

    fn args(&mut self, close: &str) -> Result<Vec<Expr>> {
        let mut args = Vec::new();
        if self.eat(close) {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(close) {
                return Ok(args);
            }
            self.expect(",")?;
        }
    }

    fn member(&mut self) -> Result<Expr> {
        let mut expr = self.primary()?;
        loop {
            if self.eat(".") {
                let Some(Token::Ident(name)) = self.peek().cloned() else {
                    return Err(CelError::Unsupported("expected a field name".into()));
                };
                self.position += 1;
                expr = if self.eat("(") {
                    Expr::Method(Box::new(expr), name, self.args(")")?)
                } else {
                    Expr::Select(Box::new(expr), name)
                };
            } else if self.eat("[") {
                let index = self.expr()?;
                self.expect("]")?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr> {
        let token = self
            .peek()
            .cloned()
            .ok_or_else(|| CelError::Unsupported("unexpected end".into()))?;
        self.position += 1;
        match token {
            Token::Int(n) => Ok(Expr::Literal(Value::from(n))),
            Token::Float(f) => Ok(Expr::Literal(Value::from(f))),
            Token::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Token::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                "null" => Ok(Expr::Literal(Value::Null)),
                _ if self.eat("(") => Ok(Expr::Call(word, self.args(")")?)),
                _ => Ok(Expr::Var(word)),
            },
            Token::Op("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Op("[") => Ok(Expr::List(self.args("]")?)),
            Token::Op(op) => Err(CelError::Unsupported(format!("unexpected {op:?}"))),
        }
    }
}

/// Parses a rule.
pub fn parse(rule: &str) -> Result<Expr> {
    let mut parser = Parser {
        tokens: tokenize(rule)?,
        position: 0,
    };
    let expr = parser.expr()?;
    if parser.position != parser.tokens.len() {
        return Err(CelError::Unsupported(format!(
            "trailing input at token {}",
            parser.position
        )));
    }
    Ok(expr)
}

/// Whether an expression mentions `oldSelf` (a transition rule).
pub fn uses_old_self(expr: &Expr) -> bool {
    match expr {
        Expr::Var(name) => name == "oldSelf",
        Expr::Literal(_) => false,
        Expr::Select(e, _) | Expr::Unary(_, e) => uses_old_self(e),
        Expr::Index(a, b) | Expr::Binary(_, a, b) => uses_old_self(a) || uses_old_self(b),
        Expr::Cond(a, b, c) => uses_old_self(a) || uses_old_self(b) || uses_old_self(c),
        Expr::List(items) | Expr::Call(_, items) => items.iter().any(uses_old_self),
        Expr::Method(target, _, args) => uses_old_self(target) || args.iter().any(uses_old_self),
    }
}

type Scope<'a> = Vec<(String, Value)>;

fn runtime(message: impl Into<String>) -> CelError {
    CelError::Runtime(message.into())
}

fn lookup(scope: &Scope<'_>, name: &str) -> Result<Value> {
    scope
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| CelError::Unsupported(format!("undeclared reference to {name:?}")))
}

fn truth(value: &Value) -> Result<bool> {
    value
        .as_bool()
        .ok_or_else(|| runtime("no matching overload: expected a bool"))
}

fn number(value: &Value) -> Option<f64> {
    value.as_f64()
}

fn compare(op: &str, left: &Value, right: &Value) -> Result<bool> {
    let ordering = match (left, right) {
        (Value::String(a), Value::String(b)) => a.cmp(b),
        _ => {
            let (a, b) = number(left)
                .zip(number(right))
                .ok_or_else(|| runtime(format!("no matching overload for {op}")))?;
            a.partial_cmp(&b).ok_or_else(|| runtime("cannot compare"))?
        }
    };
    Ok(match op {
        "<" => ordering.is_lt(),
        "<=" => ordering.is_le(),
        ">" => ordering.is_gt(),
        _ => ordering.is_ge(),
    })
}

fn equal(left: &Value, right: &Value) -> bool {
    match (number(left), number(right)) {
        (Some(a), Some(b)) if left.is_number() && right.is_number() => a == b,
        _ => left == right,
    }
}

fn size(value: &Value) -> Result<Value> {
    Ok(Value::from(match value {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(m) => m.len(),
        _ => return Err(runtime("no matching overload for size")),
    }))
}

fn eval_str(expr: &Expr, scope: &mut Scope<'_>) -> Result<String> {
    match eval(expr, scope)? {
        Value::String(s) => Ok(s),
        _ => Err(runtime("expected a string")),
    }
}

fn has(expr: &Expr, scope: &mut Scope<'_>) -> Result<Value> {
    let Expr::Select(target, field) = expr else {
        return Err(CelError::Unsupported(
            "has() needs a field selection".into(),
        ));
    };
    let target = eval(target, scope)?;
    Ok(Value::Bool(target.as_object().is_some_and(|m| {
        m.get(field).is_some_and(|v| !v.is_null())
    })))
}

fn macro_call(target: Value, name: &str, args: &[Expr], scope: &mut Scope<'_>) -> Result<Value> {
    let [Expr::Var(var), predicate] = args else {
        return Err(CelError::Unsupported(format!(
            "{name} needs a variable and a predicate"
        )));
    };
    let items: Vec<Value> = match target {
        Value::Array(items) => items,
        Value::Object(map) => map.keys().cloned().map(Value::String).collect(),
        _ => return Err(runtime(format!("no matching overload for {name}"))),
    };
    let mut matches = 0usize;
    for item in items {
        scope.push((var.clone(), item));
        let result = eval(predicate, scope).and_then(|v| truth(&v));
        scope.pop();
        let passed = result?;
        if passed {
            matches += 1;
            if name == "exists" {
                return Ok(Value::Bool(true));
            }
        } else if name == "all" {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(match name {
        "all" => true,
        "exists" => false,
        _ => matches == 1,
    }))
}

/// Evaluates an expression with the given variables.
pub fn eval(expr: &Expr, scope: &mut Scope<'_>) -> Result<Value> {
    match expr {
        Expr::Literal(v) => Ok(v.clone()),
        Expr::Var(name) => lookup(scope, name),
        Expr::Select(target, field) => match eval(target, scope)? {
            Value::Object(map) => map
                .get(field)
                .cloned()
                .ok_or_else(|| runtime(format!("no such key: {field}"))),
            _ => Err(runtime(format!("no such key: {field}"))),
        },
        Expr::Index(target, index) => {
            let target = eval(target, scope)?;
            let index = eval(index, scope)?;
            match (&target, &index) {
                (Value::Array(items), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| items.get(i).cloned())
                    .ok_or_else(|| runtime("index out of range")),
                (Value::Object(map), Value::String(key)) => map
                    .get(key)
                    .cloned()
                    .ok_or_else(|| runtime(format!("no such key: {key}"))),
                _ => Err(runtime("no matching overload for index")),
            }
        }
        Expr::List(items) => Ok(Value::Array(
            items
                .iter()
                .map(|i| eval(i, scope))
                .collect::<Result<_>>()?,
        )),
        Expr::Unary("!", inner) => Ok(Value::Bool(!truth(&eval(inner, scope)?)?)),
        Expr::Unary(_, inner) => match eval(inner, scope)? {
            Value::Number(n) if n.is_i64() => Ok(Value::from(-n.as_i64().unwrap_or_default())),
            Value::Number(n) => Ok(Value::from(-n.as_f64().unwrap_or_default())),
            _ => Err(runtime("no matching overload for -")),
        },
        Expr::Binary("&&", a, b) => {
            // CEL's && and || are commutative with respect to errors; short-circuit like it does.
            let left = eval(a, scope).and_then(|v| truth(&v));
            if left == Ok(false) {
                return Ok(Value::Bool(false));
            }
            let right = truth(&eval(b, scope)?)?;
            if !right {
                return Ok(Value::Bool(false));
            }
            Ok(Value::Bool(left?))
        }
        Expr::Binary("||", a, b) => {
            let left = eval(a, scope).and_then(|v| truth(&v));
            if left == Ok(true) {
                return Ok(Value::Bool(true));
            }
            let right = truth(&eval(b, scope)?)?;
            if right {
                return Ok(Value::Bool(true));
            }
            Ok(Value::Bool(left?))
        }
        Expr::Binary(op, a, b) => {
            let left = eval(a, scope)?;
            let right = eval(b, scope)?;
            binary(op, &left, &right)
        }
        Expr::Cond(c, a, b) => {
            if truth(&eval(c, scope)?)? {
                eval(a, scope)
            } else {
                eval(b, scope)
            }
        }
        Expr::Call(name, args) => match (name.as_str(), args.as_slice()) {
            ("has", [arg]) => has(arg, scope),
            ("size", [arg]) => size(&eval(arg, scope)?),
            ("matches", [s, re]) => {
                let (s, re) = (eval_str(s, scope)?, eval_str(re, scope)?);
                matches(&s, &re)
            }
            _ => Err(CelError::Unsupported(format!("function {name}"))),
        },
        Expr::Method(target, name, args) => {
            if matches!(name.as_str(), "all" | "exists" | "exists_one") {
                let target = eval(target, scope)?;
                return macro_call(target, name, args, scope);
            }
            let target = eval(target, scope)?;
            let args: Vec<Value> = args.iter().map(|a| eval(a, scope)).collect::<Result<_>>()?;
            method(&target, name, &args)
        }
    }
}

fn matches(s: &str, re: &str) -> Result<Value> {
    let re = regex::Regex::new(re).map_err(|e| runtime(format!("invalid regex: {e}")))?;
    Ok(Value::Bool(re.is_match(s)))
}

fn method(target: &Value, name: &str, args: &[Value]) -> Result<Value> {
    let text = |v: &Value| {
        v.as_str()
            .map(String::from)
            .ok_or_else(|| runtime(format!("no matching overload for {name}")))
    };
    match (name, args) {
        ("size", []) => size(target),
        ("matches", [re]) => matches(&text(target)?, &text(re)?),
        ("startsWith", [p]) => Ok(Value::Bool(text(target)?.starts_with(&text(p)?))),
        ("endsWith", [p]) => Ok(Value::Bool(text(target)?.ends_with(&text(p)?))),
        ("contains", [p]) => Ok(Value::Bool(text(target)?.contains(&text(p)?))),
        _ => Err(CelError::Unsupported(format!("method {name}"))),
    }
}

fn binary(op: &str, left: &Value, right: &Value) -> Result<Value> {
    match op {
        "==" => Ok(Value::Bool(equal(left, right))),
        "!=" => Ok(Value::Bool(!equal(left, right))),
        "<" | "<=" | ">" | ">=" => Ok(Value::Bool(compare(op, left, right)?)),
        "in" => match right {
            Value::Array(items) => Ok(Value::Bool(items.iter().any(|i| equal(i, left)))),
            Value::Object(map) => Ok(Value::Bool(
                left.as_str().is_some_and(|k| map.contains_key(k)),
            )),
            _ => Err(runtime("no matching overload for in")),
        },
        "+" => match (left, right) {
            (Value::String(a), Value::String(b)) => Ok(Value::String(format!("{a}{b}"))),
            (Value::Array(a), Value::Array(b)) => {
                Ok(Value::Array(a.iter().chain(b).cloned().collect()))
            }
            _ => arithmetic(op, left, right),
        },
        _ => arithmetic(op, left, right),
    }
}

fn arithmetic(op: &str, left: &Value, right: &Value) -> Result<Value> {
    if let (Some(a), Some(b)) = (left.as_i64(), right.as_i64()) {
        let result = match op {
            "+" => a.checked_add(b),
            "-" => a.checked_sub(b),
            "*" => a.checked_mul(b),
            "/" => a.checked_div(b),
            _ => a.checked_rem(b),
        };
        return result
            .map(Value::from)
            .ok_or_else(|| runtime("arithmetic overflow or division by zero"));
    }
    let (a, b) = number(left)
        .zip(number(right))
        .ok_or_else(|| runtime(format!("no matching overload for {op}")))?;
    Ok(Value::from(match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => a / b,
        _ => a % b,
    }))
}

/// Checks every `x-kubernetes-validations` rule under a schema node; transition rules (using
/// `oldSelf`) only when an old value exists. Rules the interpreter does not support are skipped.
pub fn check_rules(
    schema: &Value,
    value: &Value,
    old: Option<&Value>,
    path: &str,
    causes: &mut Vec<FieldCause>,
) {
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for rule in rules {
            let Some(text) = rule.get("rule").and_then(Value::as_str) else {
                continue;
            };
            let Ok(expr) = parse(text) else { continue };
            if uses_old_self(&expr) && old.is_none() {
                continue;
            }
            let message = rule
                .get("message")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| format!("failed rule: {text}"));
            let kind = Value::String(type_name(value).into());
            match holds(&expr, value, old) {
                Ok(true) | Err(CelError::Unsupported(_)) => {}
                Ok(false) => causes.push(FieldCause::invalid(path, &kind, &message)),
                Err(CelError::Runtime(error)) => causes.push(FieldCause::invalid(
                    path,
                    &kind,
                    &format!("{error} evaluating rule: {message}"),
                )),
            }
        }
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map {
                let child_schema = properties.and_then(|p| p.get(key)).or(additional);
                if let Some(child_schema) = child_schema {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    let old_child = old.and_then(|o| o.get(key));
                    check_rules(child_schema, child, old_child, &child_path, causes);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_rules(item_schema, item, None, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
    }
}

/// Evaluates a rule for `self` (and `oldSelf`): Ok(true) when it holds.
pub fn holds(rule: &Expr, value: &Value, old: Option<&Value>) -> Result<bool> {
    let mut scope: Scope<'_> = vec![("self".into(), value.clone())];
    if let Some(old) = old {
        scope.push(("oldSelf".into(), old.clone()));
    }
    truth(&eval(rule, &mut scope)?)
}

#[cfg(test)]
#[path = "cel_tests.rs"]
mod tests;
