// rego/parser.cpp — lexer and recursive-descent parser for Rego (see parser.h). Operator
// precedence follows OPA's grammar (lowest first): `in`, relations (== != < <= > >=), `|`, `&`,
// `+ -`, `* / %`; `=` and `:=` only at the top of an expression.
#include "rego/parser.h"

#include <cstring>

namespace mg::rego {

std::string RegoError::to_string() const {
  std::string out;
  if (row > 0) {
    out += file.empty() ? std::string("") : file;
    out += ":" + std::to_string(row) + ": ";
  }
  out += code + ": " + message;
  return out;
}

RegoError make_error(std::string code, std::string message, const Location& loc) {
  RegoError e;
  e.code = std::move(code);
  e.message = std::move(message);
  if (loc.file) e.file = *loc.file;
  e.row = loc.row;
  e.col = loc.col;
  return e;
}

namespace {

enum class Tok : uint8_t {
  End,
  Ident,
  Number,
  String,
  LBrace,
  RBrace,
  LBrack,
  RBrack,
  LParen,
  RParen,
  Dot,
  Comma,
  Semicolon,
  Colon,
  Bar,
  Amp,
  Assign,  // :=
  Unify,   // =
  Eq,      // ==
  Neq,
  Lt,
  Lte,
  Gt,
  Gte,
  Plus,
  Minus,
  Star,
  Slash,
  Percent,
  Illegal,
};

struct Token {
  Tok tok = Tok::End;
  std::string text;  // identifier, number text, decoded string
  int row = 1, col = 1;
  uint32_t begin = 0, end = 0;  // byte offsets in the source
  bool ws_before = false;       // whitespace (or comment) right before this token
  bool nl_before = false;       // a newline since the previous token
};

struct ParseFailure {
  RegoError error;
};

class Lexer {
 public:
  Lexer(std::string_view s, const std::string* file) : s_(s), file_(file) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    for (;;) {
      Token t = next();
      t.end = static_cast<uint32_t>(i_);
      out.push_back(t);
      if (t.tok == Tok::End) break;
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& msg, int row, int col) {
    Location loc{file_, row, col};
    throw ParseFailure{make_error("rego_parse_error", msg, loc)};
  }
  char peek(size_t k = 0) const { return i_ + k < s_.size() ? s_[i_ + k] : '\0'; }
  void advance() {
    if (s_[i_] == '\n') {
      ++row_;
      col_ = 1;
    } else if ((static_cast<unsigned char>(s_[i_]) & 0xc0) != 0x80) {
      ++col_;
    }
    ++i_;
  }

  Token next() {
    Token t;
    for (;;) {
      if (i_ >= s_.size()) break;
      char c = s_[i_];
      if (c == '\n') {
        t.nl_before = true;
        t.ws_before = true;
        advance();
      } else if (c == ' ' || c == '\t' || c == '\r') {
        t.ws_before = true;
        advance();
      } else if (c == '#') {
        t.ws_before = true;
        while (i_ < s_.size() && s_[i_] != '\n') advance();
      } else {
        break;
      }
    }
    t.row = row_;
    t.col = col_;
    t.begin = static_cast<uint32_t>(i_);
    if (i_ >= s_.size()) {
      t.tok = Tok::End;
      return t;
    }
    char c = s_[i_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = i_;
      while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_')) advance();
      t.tok = Tok::Ident;
      t.text = std::string(s_.substr(start, i_ - start));
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && std::isdigit(static_cast<unsigned char>(peek(1))))) {
      size_t start = i_;
      while (std::isdigit(static_cast<unsigned char>(peek()))) advance();
      if (peek() == '.' && std::isdigit(static_cast<unsigned char>(peek(1)))) {
        advance();
        while (std::isdigit(static_cast<unsigned char>(peek()))) advance();
      }
      if (peek() == 'e' || peek() == 'E') {
        size_t save_i = i_;
        int save_col = col_;
        advance();
        if (peek() == '+' || peek() == '-') advance();
        if (!std::isdigit(static_cast<unsigned char>(peek()))) {
          i_ = save_i;
          col_ = save_col;
        } else {
          while (std::isdigit(static_cast<unsigned char>(peek()))) advance();
        }
      }
      t.tok = Tok::Number;
      t.text = std::string(s_.substr(start, i_ - start));
      if (std::isalpha(static_cast<unsigned char>(peek())) || peek() == '_')
        fail("illegal number format", t.row, t.col);
      return t;
    }
    if (c == '"') {
      // A Rego string literal is a JSON string: find its end, then decode it as JSON.
      size_t start = i_;
      advance();
      for (;;) {
        if (i_ >= s_.size() || peek() == '\n') fail("non-terminated string", t.row, t.col);
        char d = peek();
        advance();
        if (d == '"') break;
        if (d == '\\') {
          if (i_ >= s_.size()) fail("non-terminated string", t.row, t.col);
          advance();
        }
      }
      std::string literal(s_.substr(start, i_ - start));
      // Raw control characters (a tab) are allowed in Rego strings, not in JSON: escape them.
      for (size_t k = 0; k < literal.size(); ++k) {
        auto ch = static_cast<unsigned char>(literal[k]);
        if (ch >= 0x20) continue;
        static const char* hex = "0123456789abcdef";
        literal.replace(k, 1, std::string("\\u00") + hex[ch >> 4] + hex[ch & 15]);
        k += 5;
      }
      auto v = Value::parse_json(literal);
      if (!v) fail("illegal escape sequence", t.row, t.col);
      t.tok = Tok::String;
      t.text = v->as_string();
      return t;
    }
    if (c == '`') {
      advance();
      size_t start = i_;
      while (i_ < s_.size() && peek() != '`') advance();
      if (i_ >= s_.size()) fail("non-terminated raw string", t.row, t.col);
      t.text = std::string(s_.substr(start, i_ - start));
      advance();
      t.tok = Tok::String;
      return t;
    }
    auto two = [&](char a, char b) { return peek() == a && peek(1) == b; };
    auto single = [&](Tok k) {
      advance();
      t.tok = k;
      return t;
    };
    auto dbl = [&](Tok k) {
      advance();
      advance();
      t.tok = k;
      return t;
    };
    if (two(':', '=')) return dbl(Tok::Assign);
    if (two('=', '=')) return dbl(Tok::Eq);
    if (two('!', '=')) return dbl(Tok::Neq);
    if (two('<', '=')) return dbl(Tok::Lte);
    if (two('>', '=')) return dbl(Tok::Gte);
    switch (c) {
      case '{':
        return single(Tok::LBrace);
      case '}':
        return single(Tok::RBrace);
      case '[':
        return single(Tok::LBrack);
      case ']':
        return single(Tok::RBrack);
      case '(':
        return single(Tok::LParen);
      case ')':
        return single(Tok::RParen);
      case '.':
        return single(Tok::Dot);
      case ',':
        return single(Tok::Comma);
      case ';':
        return single(Tok::Semicolon);
      case ':':
        return single(Tok::Colon);
      case '|':
        return single(Tok::Bar);
      case '&':
        return single(Tok::Amp);
      case '=':
        return single(Tok::Unify);
      case '<':
        return single(Tok::Lt);
      case '>':
        return single(Tok::Gt);
      case '+':
        return single(Tok::Plus);
      case '-':
        return single(Tok::Minus);
      case '*':
        return single(Tok::Star);
      case '/':
        return single(Tok::Slash);
      case '%':
        return single(Tok::Percent);
      default:
        break;
    }
    fail(std::string("illegal token"), t.row, t.col);
  }

  std::string_view s_;
  const std::string* file_;
  size_t i_ = 0;
  int row_ = 1, col_ = 1;
};

const char* tok_name(Tok t) {
  switch (t) {
    case Tok::End:
      return "EOF";
    case Tok::Ident:
      return "ident";
    case Tok::Number:
      return "number";
    case Tok::String:
      return "string";
    case Tok::LBrace:
      return "{";
    case Tok::RBrace:
      return "}";
    case Tok::LBrack:
      return "[";
    case Tok::RBrack:
      return "]";
    case Tok::LParen:
      return "(";
    case Tok::RParen:
      return ")";
    case Tok::Dot:
      return ".";
    case Tok::Comma:
      return ",";
    case Tok::Semicolon:
      return ";";
    case Tok::Colon:
      return ":";
    case Tok::Bar:
      return "|";
    case Tok::Amp:
      return "&";
    case Tok::Assign:
      return ":=";
    case Tok::Unify:
      return "=";
    case Tok::Eq:
      return "==";
    case Tok::Neq:
      return "!=";
    case Tok::Lt:
      return "<";
    case Tok::Lte:
      return "<=";
    case Tok::Gt:
      return ">";
    case Tok::Gte:
      return ">=";
    case Tok::Plus:
      return "+";
    case Tok::Minus:
      return "-";
    case Tok::Star:
      return "*";
    case Tok::Slash:
      return "/";
    case Tok::Percent:
      return "%";
    case Tok::Illegal:
      return "illegal";
  }
  return "?";
}

bool is_keyword(const std::string& s) {
  static const char* kws[] = {"package", "import", "default", "else",     "not",  "with",  "as",  "some",
                              "every",   "in",     "if",      "contains", "true", "false", "null"};
  for (const char* k : kws)
    if (s == k) return true;
  return false;
}

class Parser {
 public:
  Parser(std::vector<Token> toks, const std::string* file, RegoVersion version)
      : t_(std::move(toks)), file_(file), version_(version) {}

  void module(Module& mod) {
    Module* m = &mod;
    m->v0 = version_ == RegoVersion::V0;
    if (!is_ident("package")) fail_here("unexpected " + describe() + ": expected package");
    m->package_loc = loc();
    next();
    TermP pkg = parse_ref_term();
    m->package = ref_path(pkg, "package");
    while (is_ident("import")) {
      Import imp;
      imp.loc = loc();
      next();
      imp.path = parse_ref_term();
      if (is_ident("as")) {
        next();
        if (cur().tok != Tok::Ident) fail_here("unexpected " + describe() + ": expected var");
        imp.alias = cur().text;
        next();
      }
      if (auto path = ref_path(imp.path, "import"); path.size() == 2 && path[0] == "rego" && path[1] == "v2")
        not_body_ = true;
      m->imports.push_back(std::move(imp));
    }
    while (cur().tok != Tok::End) {
      if (is_ident("import")) fail_here("unexpected import: imports must come before rules");
      if (is_ident("package")) fail_here("unexpected package keyword");
      parse_rules(*m);
    }
  }

  BodyP query() {
    auto body = std::make_shared<Body>();
    if (cur().tok == Tok::End) fail_here("empty query");
    parse_query_into(*body, Tok::End);
    return body;
  }

  TermP single_term() {
    TermP t = parse_expr_term();
    if (cur().tok != Tok::End) fail_here("unexpected " + describe());
    return t;
  }

 private:
  // ------------------------------------------------------------ token helpers
  const Token& cur() const { return t_[p_]; }
  const Token& ahead(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  void next() {
    if (p_ + 1 < t_.size()) ++p_;
  }
  bool is(Tok k) const { return cur().tok == k; }
  bool is_ident(const char* s) const { return cur().tok == Tok::Ident && cur().text == s; }
  Location loc() const { return Location{file_, cur().row, cur().col}; }
  std::string describe() const {
    const Token& c = cur();
    if (c.tok == Tok::End) return "eof token";
    if (c.tok == Tok::Ident) return is_keyword(c.text) ? c.text + " keyword" : "ident token";
    if (c.tok == Tok::Number) return "number token";
    if (c.tok == Tok::String) return "string token";
    return std::string(tok_name(c.tok)) + " token";
  }
  [[noreturn]] void fail_here(const std::string& msg) {
    throw ParseFailure{make_error("rego_parse_error", msg, loc())};
  }
  [[noreturn]] void fail_at(const Location& l, const std::string& msg) {
    throw ParseFailure{make_error("rego_parse_error", msg, l)};
  }
  void expect(Tok k, const char* what) {
    if (!is(k)) fail_here("unexpected " + describe() + ": expected " + what);
    next();
  }

  static TermP mk(TermType type, Location l) {
    auto t = std::make_shared<Term>();
    t->type = type;
    t->loc = l;
    return t;
  }
  static TermP mk_value(Value v, Location l) {
    auto t = mk(TermType::Value, l);
    t->value = std::move(v);
    return t;
  }
  static TermP mk_var(std::string name, Location l) {
    auto t = mk(TermType::Var, l);
    t->wildcard = name == "_";
    t->name = std::move(name);
    return t;
  }
  static TermP mk_call(const char* op, std::vector<TermP> args, Location l) {
    auto t = mk(TermType::Call, l);
    t->items.push_back(mk_var(op, l));
    for (auto& a : args) t->items.push_back(std::move(a));
    return t;
  }

  std::vector<std::string> ref_path(const TermP& t, const char* what) {
    std::vector<std::string> out;
    if (t->type == TermType::Var) {
      out.push_back(t->name);
    } else if (t->type == TermType::Ref && t->items[0]->type == TermType::Var) {
      out.push_back(t->items[0]->name);
      for (size_t i = 1; i < t->items.size(); ++i) {
        const auto& op = t->items[i];
        if (op->type != TermType::Value || !op->value.is_string())
          fail_at(op->loc, std::string("unexpected non-string ") + what + " path element");
        out.push_back(op->value.as_string());
      }
    } else {
      fail_at(t->loc, std::string("invalid ") + what + " path");
    }
    if (std::string(what) == "package") {
      if (out[0] == "data") out.erase(out.begin());
    }
    return out;
  }

  // ------------------------------------------------------------ rules
  void parse_rules(Module& m) {
    Location start = loc();
    bool is_default = false;
    if (is_ident("default")) {
      is_default = true;
      next();
    }
    auto rule = std::make_shared<Rule>();
    rule->loc = start;
    rule->is_default = is_default;
    rule->body = std::make_shared<Body>();

    // Head: a ref (var + operands) optionally followed by (args).
    if (!is(Tok::Ident) || is_keyword(cur().text))
      fail_here("unexpected " + describe() + ": expected rule head");
    TermP head = parse_ref_or_call(/*allow_call=*/true);
    TermP ref = head;
    if (head->type == TermType::Call) {
      rule->kind = RuleKind::Function;
      ref = head->items[0];
      rule->args.assign(head->items.begin() + 1, head->items.end());
    }
    if (ref->type == TermType::Var) {
      rule->head_ref.push_back(ref);
    } else if (ref->type == TermType::Ref && ref->items[0]->type == TermType::Var) {
      rule->head_ref = ref->items;
    } else {
      fail_at(ref->loc, "invalid rule head");
    }
    const std::string& name = rule->head_ref[0]->name;
    if (name == "data" || name == "input")
      fail_at(ref->loc, "rule name conflicts with built-in root document");

    bool has_value_op = false;
    if (is_ident("contains") && rule->kind != RuleKind::Function) {
      next();
      rule->kind = RuleKind::MultiValue;
      rule->key = parse_expr_term();
    } else if (is(Tok::Assign) || is(Tok::Unify)) {
      next();
      has_value_op = true;
      rule->value = parse_expr_term();
    }
    if (is_default) {
      if (!has_value_op && rule->kind != RuleKind::Function) {
        // `default p` alone is not valid; OPA requires a value.
        fail_here("unexpected " + describe() + ": expected default rule value term");
      }
      if (!has_value_op) fail_here("default rule must have a value");
      m.rules.push_back(rule);
      return;
    }

    // v0: `p[x] { ... }` (no value, single-operand ref) is a partial set.
    bool v0 = version_ == RegoVersion::V0;
    if (v0 && rule->kind == RuleKind::Complete && !has_value_op && rule->head_ref.size() == 2 &&
        rule->head_ref[1]->type != TermType::Value) {
      rule->kind = RuleKind::MultiValue;
      rule->key = rule->head_ref[1];
      rule->head_ref.pop_back();
    } else if (v0 && rule->kind == RuleKind::Complete && !has_value_op && rule->head_ref.size() == 2 &&
               !(is_ident("if") || is(Tok::LBrace))) {
      rule->kind = RuleKind::MultiValue;
      rule->key = rule->head_ref[1];
      rule->head_ref.pop_back();
    }

    bool body_parsed = parse_rule_body(*rule, v0);
    if (!body_parsed && !has_value_op && rule->kind == RuleKind::Complete) {
      // `p` alone (or `p.q`): v1 requires a value or a body.
      fail_at(start, "rule must have a value or a body");
    }
    if (!body_parsed && rule->kind == RuleKind::Function && !has_value_op)
      fail_at(start, "function must have a body");
    m.rules.push_back(rule);

    // else chain
    Rule* prev = rule.get();
    while (is_ident("else")) {
      if (rule->kind == RuleKind::MultiValue) fail_here("else keyword cannot be used on multi-value rules");
      auto e = std::make_shared<Rule>(*rule);
      e->loc = loc();
      e->else_rule = nullptr;
      e->value = nullptr;
      e->body = std::make_shared<Body>();
      next();
      if (is(Tok::Assign) || is(Tok::Unify)) {
        next();
        e->value = parse_expr_term();
      }
      if (!parse_rule_body(*e, v0)) {
        // `else = x` without a body is an unconditional fallback.
        e->has_body = false;
      }
      prev->else_rule = e;
      prev = e.get();
    }

    // v0: additional bodies for the same head: `p { a } { b }`.
    while (is(Tok::LBrace) && v0) {
      auto extra = std::make_shared<Rule>(*rule);
      extra->loc = loc();
      extra->else_rule = nullptr;
      extra->body = std::make_shared<Body>();
      parse_rule_body(*extra, v0);
      m.rules.push_back(extra);
    }
  }

  // Parses `if { ... }`, `if expr`, or `{ ... }`. Returns false when there is no body.
  bool parse_rule_body(Rule& rule, bool v0) {
    if (is_ident("if")) {
      next();
      rule.has_body = true;
      if (is(Tok::LBrace) && !looks_like_term_brace()) {
        next();
        parse_query_into(*rule.body, Tok::RBrace);
        expect(Tok::RBrace, "}");
      } else {
        rule.body->exprs.push_back(parse_literal());
      }
      return true;
    }
    if (is(Tok::LBrace)) {
      if (!v0) fail_here("`if` keyword is required before rule body");
      next();
      rule.has_body = true;
      if (is(Tok::RBrace)) fail_here("found empty body");
      parse_query_into(*rule.body, Tok::RBrace);
      expect(Tok::RBrace, "}");
      return true;
    }
    return false;
  }

  // After `if`, `{` opens a body unless it is an object/set literal used as a single expression,
  // e.g. `if {"a": 1}[x]`. Decide by scanning to the matching brace and looking at what follows.
  bool looks_like_term_brace() const {
    size_t depth = 0;
    size_t i = p_;
    for (; i < t_.size(); ++i) {
      Tok k = t_[i].tok;
      if (k == Tok::LBrace || k == Tok::LBrack || k == Tok::LParen) ++depth;
      if (k == Tok::RBrace || k == Tok::RBrack || k == Tok::RParen) {
        if (--depth == 0) break;
      }
      if (k == Tok::End) return false;
    }
    if (i + 1 >= t_.size()) return false;
    const Token& after = t_[i + 1];
    if (after.nl_before || after.tok == Tok::End || after.tok == Tok::RBrace) return false;
    if (after.tok == Tok::Ident && (after.text == "else")) return false;
    return after.tok == Tok::LBrack || after.tok == Tok::Dot || after.tok == Tok::Eq ||
           after.tok == Tok::Neq || after.tok == Tok::Unify || after.tok == Tok::Bar || after.tok == Tok::Amp;
  }

  // ------------------------------------------------------------ bodies
  void parse_query_into(Body& body, Tok end) {
    for (;;) {
      if (is(end)) {
        if (body.exprs.empty()) fail_here("found empty body");
        return;
      }
      body.exprs.push_back(parse_literal());
      if (is(Tok::Semicolon)) {
        next();
        continue;
      }
      if (is(end)) return;
      if (cur().nl_before) continue;
      fail_here("unexpected " + describe());
    }
  }

  Expr parse_literal() {
    uint32_t begin = cur().begin;
    Expr e = parse_literal_inner();
    e.src_begin = begin;
    e.src_end = p_ > 0 ? t_[p_ - 1].end : begin;
    return e;
  }

  Expr parse_literal_inner() {
    Expr e;
    e.loc = loc();
    if (is_ident("some")) {
      next();
      std::vector<TermP> vars;
      vars.push_back(parse_expr_term_no_in());
      while (is(Tok::Comma)) {
        next();
        vars.push_back(parse_expr_term_no_in());
      }
      if (is_ident("in")) {
        next();
        if (vars.size() > 2) fail_at(e.loc, "unexpected , token: expected at most two vars before in");
        TermP coll = parse_relation();
        e.type = ExprType::SomeIn;
        e.terms = {vars.size() == 2 ? vars[0] : nullptr, vars.back(), coll};
      } else {
        for (const auto& v : vars)
          if (v->type != TermType::Var) fail_at(v->loc, "expected var in some declaration");
        e.type = ExprType::SomeDecl;
        e.terms = std::move(vars);
      }
      parse_withs(e);
      return e;
    }
    if (is_ident("every")) {
      next();
      std::vector<TermP> vars;
      vars.push_back(parse_expr_term_no_in());
      if (is(Tok::Comma)) {
        next();
        vars.push_back(parse_expr_term_no_in());
      }
      if (!is_ident("in")) fail_here("unexpected " + describe() + ": expected in");
      next();
      TermP domain = parse_relation();
      expect(Tok::LBrace, "{");
      e.type = ExprType::Every;
      e.terms = {vars.size() == 2 ? vars[0] : nullptr, vars.back(), domain};
      e.body = std::make_shared<Body>();
      parse_query_into(*e.body, Tok::RBrace);
      expect(Tok::RBrace, "}");
      parse_withs(e);
      return e;
    }
    if (is_ident("not")) {
      e.negated = true;
      next();
      if (not_body_ && is(Tok::LBrace)) {
        // `import rego.v2`: `not { a; b }` negates a whole body.
        next();
        auto body = std::make_shared<Body>();
        parse_query_into(*body, Tok::RBrace);
        expect(Tok::RBrace, "}");
        e.type = ExprType::Group;
        e.body = body;
        parse_withs(e);
        return e;
      }
    }
    TermP lhs = parse_in_level(/*allow_kv=*/true);
    if (is(Tok::Assign) || is(Tok::Unify)) {
      bool assign = is(Tok::Assign);
      next();
      TermP rhs = parse_in_level(false);
      e.type = assign ? ExprType::Assign : ExprType::Unify;
      e.terms = {lhs, rhs};
    } else if (lhs->type == TermType::Call) {
      e.type = ExprType::Call;
      e.terms = {lhs};
    } else {
      e.type = ExprType::Term;
      e.terms = {lhs};
    }
    parse_withs(e);
    return e;
  }

  void parse_withs(Expr& e) {
    while (is_ident("with")) {
      With w;
      w.loc = loc();
      next();
      w.target = parse_ref_or_call(false);
      if (!is_ident("as")) fail_here("unexpected " + describe() + ": expected as");
      next();
      w.value = parse_in_level(false);
      e.withs.push_back(std::move(w));
    }
  }

  // ------------------------------------------------------------ expression terms
  TermP parse_expr_term() { return parse_in_level(false); }
  TermP parse_expr_term_no_in() { return parse_relation(); }

  TermP parse_in_level(bool allow_kv) {
    Location l = loc();
    TermP lhs = parse_relation();
    if (allow_kv && is(Tok::Comma)) {
      // `k, v in xs`
      size_t save = p_;
      next();
      TermP mid = parse_relation();
      if (is_ident("in")) {
        next();
        TermP rhs = parse_relation();
        TermP call = mk_call("internal.member_3", {lhs, mid, rhs}, l);
        return continue_in(call, l);
      }
      p_ = save;
      return lhs;
    }
    return continue_in(lhs, l);
  }

  TermP continue_in(TermP lhs, Location l) {
    while (is_ident("in")) {
      next();
      TermP rhs = parse_relation();
      lhs = mk_call("internal.member_2", {lhs, rhs}, l);
    }
    return lhs;
  }

  TermP parse_relation() {
    Location l = loc();
    TermP lhs = parse_or();
    for (;;) {
      const char* op = nullptr;
      switch (cur().tok) {
        case Tok::Eq:
          op = "equal";
          break;
        case Tok::Neq:
          op = "neq";
          break;
        case Tok::Lt:
          op = "lt";
          break;
        case Tok::Lte:
          op = "lte";
          break;
        case Tok::Gt:
          op = "gt";
          break;
        case Tok::Gte:
          op = "gte";
          break;
        default:
          return lhs;
      }
      next();
      TermP rhs = parse_or();
      lhs = mk_call(op, {lhs, rhs}, l);
    }
  }

  TermP parse_or() {
    Location l = loc();
    TermP lhs = parse_and();
    while (is(Tok::Bar) && !no_bar_) {
      next();
      TermP rhs = parse_and();
      lhs = mk_call("or", {lhs, rhs}, l);
    }
    return lhs;
  }

  TermP parse_and() {
    Location l = loc();
    TermP lhs = parse_arith();
    while (is(Tok::Amp)) {
      next();
      TermP rhs = parse_arith();
      lhs = mk_call("and", {lhs, rhs}, l);
    }
    return lhs;
  }

  TermP parse_arith() {
    Location l = loc();
    TermP lhs = parse_factor();
    while (is(Tok::Plus) || is(Tok::Minus)) {
      const char* op = is(Tok::Plus) ? "plus" : "minus";
      next();
      TermP rhs = parse_factor();
      lhs = mk_call(op, {lhs, rhs}, l);
    }
    return lhs;
  }

  TermP parse_factor() {
    Location l = loc();
    TermP lhs = parse_term();
    while (is(Tok::Star) || is(Tok::Slash) || is(Tok::Percent)) {
      const char* op = is(Tok::Star) ? "mul" : (is(Tok::Slash) ? "div" : "rem");
      next();
      TermP rhs = parse_term();
      lhs = mk_call(op, {lhs, rhs}, l);
    }
    return lhs;
  }

  TermP parse_term() {
    if (++depth_ > 1000) fail_here("nesting too deep");
    TermP t = parse_term_inner();
    --depth_;
    return t;
  }

  TermP parse_term_inner() {
    Location l = loc();
    const Token& c = cur();
    switch (c.tok) {
      case Tok::Number: {
        auto v = Value::number_from_text(c.text);
        if (!v) fail_here("invalid number");
        next();
        return postfix(mk_value(*v, l));
      }
      case Tok::Minus: {
        if (ahead().tok == Tok::Number && !ahead().ws_before) {
          next();
          auto v = Value::number_from_text("-" + cur().text);
          if (!v) fail_here("invalid number");
          next();
          return mk_value(*v, l);
        }
        next();
        TermP operand = parse_term();
        return mk_call("minus", {mk_value(Value::number(int64_t{0}), l), operand}, l);
      }
      case Tok::String: {
        TermP t = mk_value(Value::string(c.text), l);
        next();
        return postfix(t);
      }
      case Tok::LBrack:
        return postfix(parse_array());
      case Tok::LBrace:
        return postfix(parse_brace());
      case Tok::LParen: {
        next();
        bool saved = no_bar_;
        no_bar_ = false;
        TermP inner = parse_in_level(false);
        no_bar_ = saved;
        expect(Tok::RParen, ")");
        return postfix(inner);
      }
      case Tok::Ident: {
        if (c.text == "true" || c.text == "false") {
          TermP t = mk_value(Value::boolean(c.text == "true"), l);
          next();
          return t;
        }
        if (c.text == "null") {
          next();
          return mk_value(Value(), l);
        }
        if (c.text == "set" && ahead().tok == Tok::LParen && ahead(2).tok == Tok::RParen) {
          next();
          next();
          next();
          return mk(TermType::Set, l);
        }
        if (is_keyword(c.text) && c.text != "contains" && c.text != "if" && c.text != "every" &&
            c.text != "in")
          fail_here("unexpected " + describe());
        if (c.text == "in" || c.text == "if" || c.text == "every" || c.text == "contains")
          fail_here("unexpected " + c.text + " keyword");
        return parse_ref_or_call(true);
      }
      default:
        fail_here("unexpected " + describe() + ": expected term");
    }
  }

  // var ( .ident | [term] )* ( (args) )?
  TermP parse_ref_or_call(bool allow_call) {
    Location l = loc();
    if (!is(Tok::Ident)) fail_here("unexpected " + describe() + ": expected ref");
    TermP head = mk_var(cur().text, l);
    next();
    TermP t = head;
    t = ref_operands(t);
    if (allow_call && is(Tok::LParen) && !cur().ws_before) {
      next();
      TermP call = mk(TermType::Call, l);
      call->items.push_back(t);
      bool saved = no_bar_;
      no_bar_ = false;
      if (!is(Tok::RParen)) {
        for (;;) {
          call->items.push_back(parse_in_level(false));
          if (is(Tok::Comma)) {
            next();
            continue;
          }
          break;
        }
      }
      no_bar_ = saved;
      expect(Tok::RParen, ")");
      // A call result can be dereferenced: f(x).y, f(x)[0].
      if ((is(Tok::Dot) || is(Tok::LBrack)) && !cur().ws_before) return ref_operands(call);
      return call;
    }
    return t;
  }

  TermP ref_operands(TermP t) {
    for (;;) {
      if (is(Tok::Dot) && !cur().ws_before) {
        next();
        if (!is(Tok::Ident)) fail_here("unexpected " + describe() + ": expected ident");
        TermP key = mk_value(Value::string(cur().text), loc());
        next();
        t = extend_ref(t, key);
      } else if (is(Tok::LBrack) && !cur().ws_before) {
        next();
        bool saved = no_bar_;
        no_bar_ = false;
        TermP key = parse_in_level(false);
        no_bar_ = saved;
        expect(Tok::RBrack, "]");
        t = extend_ref(t, key);
      } else {
        return t;
      }
    }
  }

  static TermP extend_ref(TermP t, TermP operand) {
    if (t->type == TermType::Ref) {
      t->items.push_back(std::move(operand));
      return t;
    }
    TermP r = mk(TermType::Ref, t->loc);
    r->items.push_back(t);
    r->items.push_back(std::move(operand));
    return r;
  }

  // Terms after a composite literal: `[1,2][0]`, `{"a":1}.a`.
  TermP postfix(TermP t) {
    if ((is(Tok::Dot) || is(Tok::LBrack)) && !cur().ws_before && t->type != TermType::Value)
      return ref_operands(t);
    if (is(Tok::LBrack) && !cur().ws_before) return ref_operands(t);
    return t;
  }

  TermP parse_array() {
    Location l = loc();
    next();  // [
    TermP arr = mk(TermType::Array, l);
    if (is(Tok::RBrack)) {
      next();
      return arr;
    }
    bool saved = no_bar_;
    no_bar_ = true;
    TermP first = parse_in_level(false);
    no_bar_ = saved;
    if (is(Tok::Bar)) {
      next();
      TermP c = mk(TermType::ArrayCompr, l);
      c->key = first;
      c->body = std::make_shared<Body>();
      parse_query_into(*c->body, Tok::RBrack);
      expect(Tok::RBrack, "]");
      return c;
    }
    arr->items.push_back(first);
    while (is(Tok::Comma)) {
      next();
      if (is(Tok::RBrack)) break;
      arr->items.push_back(parse_in_level(false));
    }
    expect(Tok::RBrack, "]");
    return arr;
  }

  TermP parse_brace() {
    Location l = loc();
    next();  // {
    if (is(Tok::RBrace)) {
      next();
      return mk(TermType::Object, l);
    }
    bool saved = no_bar_;
    no_bar_ = true;
    TermP first = parse_in_level(false);
    if (is(Tok::Colon)) {
      next();
      TermP val = parse_in_level(false);
      no_bar_ = saved;
      if (is(Tok::Bar)) {
        next();
        TermP c = mk(TermType::ObjectCompr, l);
        c->key = first;
        c->val = val;
        c->body = std::make_shared<Body>();
        parse_query_into(*c->body, Tok::RBrace);
        expect(Tok::RBrace, "}");
        return c;
      }
      TermP obj = mk(TermType::Object, l);
      obj->pairs.emplace_back(first, val);
      while (is(Tok::Comma)) {
        next();
        if (is(Tok::RBrace)) break;
        TermP k = parse_in_level(false);
        expect(Tok::Colon, ":");
        TermP v = parse_in_level(false);
        obj->pairs.emplace_back(k, v);
      }
      expect(Tok::RBrace, "}");
      return obj;
    }
    no_bar_ = saved;
    if (is(Tok::Bar)) {
      next();
      TermP c = mk(TermType::SetCompr, l);
      c->key = first;
      c->body = std::make_shared<Body>();
      parse_query_into(*c->body, Tok::RBrace);
      expect(Tok::RBrace, "}");
      return c;
    }
    TermP set = mk(TermType::Set, l);
    set->items.push_back(first);
    while (is(Tok::Comma)) {
      next();
      if (is(Tok::RBrace)) break;
      set->items.push_back(parse_in_level(false));
    }
    expect(Tok::RBrace, "}");
    return set;
  }

  TermP parse_ref_term() { return parse_ref_or_call(false); }

  std::vector<Token> t_;
  size_t p_ = 0;
  const std::string* file_;
  RegoVersion version_;
  bool no_bar_ = false;
  bool not_body_ = false;  // `import rego.v2`
  int depth_ = 0;
};

// Folds a term without variables into a Value (nullopt if it is not constant).
std::optional<Value> constant_value(const Term& t) {
  switch (t.type) {
    case TermType::Value:
      return t.value;
    case TermType::Array: {
      Array items;
      for (const auto& i : t.items) {
        auto v = constant_value(*i);
        if (!v) return std::nullopt;
        items.push_back(std::move(*v));
      }
      return Value::array(std::move(items));
    }
    case TermType::Set: {
      std::vector<Value> items;
      for (const auto& i : t.items) {
        auto v = constant_value(*i);
        if (!v) return std::nullopt;
        items.push_back(std::move(*v));
      }
      return Value::set(std::move(items));
    }
    case TermType::Object: {
      ObjectItems items;
      for (const auto& [k, v] : t.pairs) {
        auto kv = constant_value(*k);
        auto vv = constant_value(*v);
        if (!kv || !vv) return std::nullopt;
        items.emplace_back(std::move(*kv), std::move(*vv));
      }
      return Value::object(std::move(items));
    }
    case TermType::Call: {
      // Negative literals written as `-x` of a number fold here.
      if (t.items.size() == 3 && t.items[0]->type == TermType::Var && t.items[0]->name == "minus") {
        auto a = constant_value(*t.items[1]);
        auto b = constant_value(*t.items[2]);
        if (a && b && a->is_number() && b->is_number()) return numeric::sub(*a, *b);
      }
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace

Result<ModuleP, RegoErrors> parse_module(std::string_view text, const std::string& file,
                                         RegoVersion version) {
  // Locations point at the module's own copy of its file name (the module is heap-allocated).
  auto m = std::make_shared<Module>();
  m->file = file;
  try {
    Lexer lx(text, &m->file);
    Parser p(lx.run(), &m->file, version);
    p.module(*m);
    return m;
  } catch (const ParseFailure& f) {
    return fail(RegoErrors{f.error});
  }
}

Result<BodyP, RegoErrors> parse_query(std::string_view text) {
  try {
    Lexer lx(text, nullptr);
    Parser p(lx.run(), nullptr, RegoVersion::V1);
    return p.query();
  } catch (const ParseFailure& f) {
    return fail(RegoErrors{f.error});
  }
}

Result<Value, RegoErrors> parse_value(std::string_view text) {
  try {
    Lexer lx(text, nullptr);
    Parser p(lx.run(), nullptr, RegoVersion::V1);
    TermP t = p.single_term();
    auto v = constant_value(*t);
    if (!v) return fail(RegoErrors{make_error("rego_parse_error", "value must be ground", t->loc)});
    return *v;
  } catch (const ParseFailure& f) {
    return fail(RegoErrors{f.error});
  }
}

}  // namespace mg::rego
