#include "qianmian/push/audience.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "qianmian/core/csv.h"

namespace qm::push {

namespace {

enum class Tok : uint8_t { kWord, kString, kNumber, kOp, kLParen, kRParen, kComma, kEnd };

struct Token {
  Tok kind;
  std::string text;
  size_t pos;  // 0-based byte offset
};

std::string Lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

bool WordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':' ||
         (static_cast<unsigned char>(c) >= 0x80);  // UTF-8 (e.g. Chinese region names)
}

Status ErrorAt(size_t pos, const std::string& what) {
  return Status::InvalidArgument("audience: position " + std::to_string(pos + 1) + ": " + what);
}

Result<std::vector<Token>> Lex(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    const size_t start = i;
    if (c == '(') {
      out.push_back({Tok::kLParen, "(", i++});
      continue;
    }
    if (c == ')') {
      out.push_back({Tok::kRParen, ")", i++});
      continue;
    }
    if (c == ',') {
      out.push_back({Tok::kComma, ",", i++});
      continue;
    }
    if (c == '"' || c == '\'') {
      std::string v;
      ++i;
      while (i < s.size() && s[i] != c) v.push_back(s[i++]);
      if (i >= s.size()) return ErrorAt(start, "unterminated string");
      ++i;
      out.push_back({Tok::kString, v, start});
      continue;
    }
    if (c == '=' || c == '<' || c == '>' || c == '!') {
      std::string op(1, c);
      ++i;
      if (i < s.size() && s[i] == '=') op.push_back(s[i++]);
      if (op == "!") return ErrorAt(start, "expected '!='");
      if (op == "==") op = "=";
      out.push_back({Tok::kOp, op, start});
      continue;
    }
    if (WordChar(c)) {
      while (i < s.size() && WordChar(s[i])) ++i;
      std::string w(s.substr(start, i - start));
      char* end = nullptr;
      std::strtod(w.c_str(), &end);
      const bool number = !w.empty() && end == w.c_str() + w.size() &&
                          (std::isdigit(static_cast<unsigned char>(w[0])) || w[0] == '-' || w[0] == '.');
      out.push_back({number ? Tok::kNumber : Tok::kWord, w, start});
      continue;
    }
    return ErrorAt(start, std::string("unexpected character '") + c + "'");
  }
  out.push_back({Tok::kEnd, "", s.size()});
  return out;
}

enum class Field : uint8_t { kId, kTier, kRisk, kRegion, kTag, kOptOut, kNumeric, kCategorical };
enum class Op : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

}  // namespace

struct Audience::Node {
  enum class Kind : uint8_t { kAll, kAnd, kOr, kNot, kCompare, kIn } kind = Kind::kAll;
  std::vector<std::shared_ptr<const Node>> kids;
  Field field = Field::kId;
  size_t column = 0;      // kNumeric / kCategorical: index into Dataset::features (or ::portraits)
  bool portrait = false;  // the column is one of the served version's portraits
  Op op = Op::kEq;
  bool negate_in = false;          // `not in`
  double number = 0;               // tier / risk / numeric
  std::string text;                // customer_id
  std::vector<uint32_t> codes;     // region / label / category codes, channel ids; UINT32_MAX = unknown
  std::vector<double> numbers;     // kIn over ordered or numeric fields
  std::vector<std::string> texts;  // kIn over customer_id
};

namespace {

using Node = Audience::Node;
using NodePtr = std::shared_ptr<const Node>;

// The column a kNumeric / kCategorical node reads.
const FeatureColumn& Col(const Dataset& ds, const Node& n) {
  return n.portrait ? ds.portraits[n.column] : ds.features[n.column];
}
// Its value for customer c: NaN / 0 (missing) past its end (a customer added since).
float NumberAt(const FeatureColumn& col, uint32_t c) { return c < col.numeric.size() ? col.numeric[c] : NAN; }
uint32_t CodeAt(const FeatureColumn& col, uint32_t c) { return c < col.codes.size() ? col.codes[c] : 0; }

bool CompareNumber(double a, Op op, double b) {
  switch (op) {
    case Op::kEq:
      return a == b;
    case Op::kNe:
      return a != b;
    case Op::kLt:
      return a < b;
    case Op::kLe:
      return a <= b;
    case Op::kGt:
      return a > b;
    case Op::kGe:
      return a >= b;
  }
  return false;
}

Op ParseOp(const std::string& s) {
  if (s == "=") return Op::kEq;
  if (s == "!=") return Op::kNe;
  if (s == "<") return Op::kLt;
  if (s == "<=") return Op::kLe;
  if (s == ">") return Op::kGt;
  return Op::kGe;
}

class Parser {
 public:
  Parser(std::vector<Token> toks, const Dataset& ds) : t_(std::move(toks)), ds_(ds) {}

  Result<NodePtr> Parse() {
    QM_ASSIGN_OR_RETURN(NodePtr n, Or());
    if (Peek().kind != Tok::kEnd)
      return ErrorAt(Peek().pos, "expected 'and', 'or' or the end, found '" + Peek().text + "'");
    return n;
  }

 private:
  const Token& Peek() const { return t_[i_]; }
  bool IsWord(const char* w) const { return Peek().kind == Tok::kWord && Lower(Peek().text) == w; }

  Result<NodePtr> Or() {
    QM_ASSIGN_OR_RETURN(NodePtr a, And());
    if (!IsWord("or")) return a;
    auto n = std::make_shared<Node>();
    n->kind = Node::Kind::kOr;
    n->kids.push_back(a);
    while (IsWord("or")) {
      ++i_;
      QM_ASSIGN_OR_RETURN(NodePtr b, And());
      n->kids.push_back(b);
    }
    return NodePtr(n);
  }

  Result<NodePtr> And() {
    QM_ASSIGN_OR_RETURN(NodePtr a, Factor());
    if (!IsWord("and")) return a;
    auto n = std::make_shared<Node>();
    n->kind = Node::Kind::kAnd;
    n->kids.push_back(a);
    while (IsWord("and")) {
      ++i_;
      QM_ASSIGN_OR_RETURN(NodePtr b, Factor());
      n->kids.push_back(b);
    }
    return NodePtr(n);
  }

  Result<NodePtr> Factor() {
    const Token& t = Peek();
    if (t.kind == Tok::kEnd) return ErrorAt(t.pos, "unexpected end of expression");
    if (IsWord("not")) {
      ++i_;
      QM_ASSIGN_OR_RETURN(NodePtr a, Factor());
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::kNot;
      n->kids.push_back(a);
      return NodePtr(n);
    }
    if (t.kind == Tok::kLParen) {
      ++i_;
      QM_ASSIGN_OR_RETURN(NodePtr a, Or());
      if (Peek().kind != Tok::kRParen) return ErrorAt(Peek().pos, "expected ')'");
      ++i_;
      return a;
    }
    if (t.kind != Tok::kWord)
      return ErrorAt(t.pos, "expected a field, 'tag:NAME', 'not' or '(', found '" + t.text + "'");
    if (IsWord("all")) {
      ++i_;
      return NodePtr(std::make_shared<Node>());
    }
    const std::string lower = Lower(t.text);
    if (lower.rfind("tag:", 0) == 0) {
      const std::string label = t.text.substr(4);
      if (label.empty()) return ErrorAt(t.pos, "'tag:' needs a label name");
      ++i_;
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::kIn;
      n->field = Field::kTag;
      n->codes.push_back(Code(ds_.labels, label));
      return NodePtr(n);
    }
    if (lower.rfind("interest:", 0) == 0) return Interest(t);
    return Comparison();
  }

  // interest:CATEGORY: the category is one of the customer's top interests (portraits'
  // interest_1..3).
  Result<NodePtr> Interest(const Token& t) {
    const std::string category = t.text.substr(9);
    if (category.empty()) return ErrorAt(t.pos, "'interest:' needs a category name");
    auto any = std::make_shared<Node>();
    any->kind = Node::Kind::kOr;
    for (size_t k = 0; k < ds_.portraits.size(); ++k) {
      const FeatureColumn& col = ds_.portraits[k];
      if (col.name.rfind("interest_", 0) != 0 || col.kind != FeatureColumn::Kind::kCategorical) continue;
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::kIn;
      n->field = Field::kCategorical;
      n->portrait = true;
      n->column = k;
      n->codes.push_back(Code(col.categories, category));
      any->kids.push_back(n);
    }
    if (any->kids.empty()) {
      return ErrorAt(t.pos, "'interest:' needs portraits: this version has none (train a new one)");
    }
    if (!ds_.categories.Find(category)) return ErrorAt(t.pos, "unknown category '" + category + "'");
    ++i_;
    return NodePtr(any);
  }

  static uint32_t Code(const Dictionary& d, const std::string& v) {
    auto c = d.Find(v);
    return c ? *c : UINT32_MAX;
  }

  Status BindField(const Token& t, Node* n) {
    const std::string f = Lower(t.text);
    if (f == "customer_id" || f == "id")
      n->field = Field::kId;
    else if (f == "tier")
      n->field = Field::kTier;
    else if (f == "risk_level" || f == "risk")
      n->field = Field::kRisk;
    else if (f == "region")
      n->field = Field::kRegion;
    else if (f == "tag" || f == "tags")
      n->field = Field::kTag;
    else if (f == "opt_out")
      n->field = Field::kOptOut;
    else {
      for (size_t k = 0; k < ds_.features.size(); ++k) {
        if (ds_.features[k].name == t.text) {
          n->column = k;
          n->field = ds_.features[k].kind == FeatureColumn::Kind::kNumeric ? Field::kNumeric : Field::kCategorical;
          return Status::Ok();
        }
      }
      for (size_t k = 0; k < ds_.portraits.size(); ++k) {
        if (ds_.portraits[k].name == t.text) {
          n->column = k;
          n->portrait = true;
          n->field = ds_.portraits[k].kind == FeatureColumn::Kind::kNumeric ? Field::kNumeric : Field::kCategorical;
          return Status::Ok();
        }
      }
      std::string known = "customer_id, tier, risk_level, region, tag, opt_out";
      for (const auto& c : ds_.features) known += ", " + c.name;
      for (const auto& c : ds_.portraits) known += ", " + c.name;
      known += ds_.portraits.empty() ? "; portraits such as churn_risk come with a version trained with them"
                                     : ", interest:CATEGORY";
      return ErrorAt(t.pos, "unknown field '" + t.text + "' (known: " + known + ")");
    }
    return Status::Ok();
  }

  // Converts one value for the node's field into codes/numbers/texts.
  Status AddValue(const Token& v, Node* n) {
    if (v.kind != Tok::kWord && v.kind != Tok::kString && v.kind != Tok::kNumber) {
      return ErrorAt(v.pos, "expected a value, found '" + v.text + "'");
    }
    switch (n->field) {
      case Field::kId:
        n->texts.push_back(v.text);
        break;
      case Field::kTier: {
        auto tier = ParseTier(Lower(v.text));
        if (!tier) return ErrorAt(v.pos, "unknown tier '" + v.text + "' (mass, affluent, private)");
        n->numbers.push_back(static_cast<double>(*tier));
        break;
      }
      case Field::kRisk: {
        std::string s = v.text;
        if (!s.empty() && (s[0] == 'c' || s[0] == 'C')) s = s.substr(1);
        auto r = ParseRisk(s, 'C');
        if (!r || *r == kNoRisk || *r > 5) return ErrorAt(v.pos, "bad risk level '" + v.text + "' (C1..C5)");
        n->numbers.push_back(*r);
        break;
      }
      case Field::kRegion:
        n->codes.push_back(Code(ds_.regions, v.text));
        break;
      case Field::kTag:
        n->codes.push_back(Code(ds_.labels, v.text));
        break;
      case Field::kOptOut: {
        auto ch = ds_.channels.Find(v.text);
        if (!ch) return ErrorAt(v.pos, "unknown channel '" + v.text + "'");
        n->codes.push_back(*ch);
        break;
      }
      case Field::kNumeric: {
        char* end = nullptr;
        const double x = std::strtod(v.text.c_str(), &end);
        if (v.text.empty() || end != v.text.c_str() + v.text.size()) {
          return ErrorAt(v.pos, "'" + Col(ds_, *n).name + "' is numeric: '" + v.text + "' is not a number");
        }
        n->numbers.push_back(x);
        break;
      }
      case Field::kCategorical:
        n->codes.push_back(Code(Col(ds_, *n).categories, v.text));
        break;
    }
    return Status::Ok();
  }

  Result<NodePtr> Comparison() {
    const Token& ft = Peek();
    auto n = std::make_shared<Node>();
    QM_RETURN_IF_ERROR(BindField(ft, n.get()));
    ++i_;
    const bool ordered =
        n->field == Field::kTier || n->field == Field::kRisk || n->field == Field::kNumeric || n->field == Field::kId;
    bool negate = false;
    if (IsWord("not")) {
      negate = true;
      ++i_;
      if (!IsWord("in")) return ErrorAt(Peek().pos, "expected 'in' after 'not'");
    }
    if (IsWord("in")) {
      ++i_;
      n->kind = Node::Kind::kIn;
      n->negate_in = negate;
      if (Peek().kind != Tok::kLParen) return ErrorAt(Peek().pos, "expected '(' after 'in'");
      ++i_;
      for (;;) {
        QM_RETURN_IF_ERROR(AddValue(Peek(), n.get()));
        ++i_;
        if (Peek().kind == Tok::kComma) {
          ++i_;
          continue;
        }
        if (Peek().kind == Tok::kRParen) {
          ++i_;
          break;
        }
        return ErrorAt(Peek().pos, "expected ',' or ')' in the list");
      }
      return NodePtr(n);
    }
    if (Peek().kind != Tok::kOp) {
      return ErrorAt(Peek().pos, "expected a comparison (= != < <= > >= in) after '" + ft.text + "'");
    }
    const Token& opt = Peek();
    n->op = ParseOp(opt.text);
    if (!ordered && n->op != Op::kEq && n->op != Op::kNe) {
      return ErrorAt(opt.pos, "'" + ft.text + "' takes only =, != and in");
    }
    ++i_;
    QM_RETURN_IF_ERROR(AddValue(Peek(), n.get()));
    ++i_;
    if (n->field == Field::kId) {
      n->text = n->texts[0];
      n->kind = Node::Kind::kCompare;
    } else if (ordered) {
      n->number = n->numbers[0];
      n->kind = Node::Kind::kCompare;
    } else {  // = / != over codes: a one-element (not) in
      n->kind = Node::Kind::kIn;
      n->negate_in = n->op == Op::kNe;
    }
    return NodePtr(n);
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  const Dataset& ds_;
};

bool HasCode(const std::vector<uint32_t>& sorted, uint32_t code) {
  return std::binary_search(sorted.begin(), sorted.end(), code);
}

bool Eval(const Node& n, const Dataset& ds, uint32_t c) {
  const Customer& cu = ds.customers[c];
  switch (n.kind) {
    case Node::Kind::kAll:
      return true;
    case Node::Kind::kAnd:
      for (const auto& k : n.kids) {
        if (!Eval(*k, ds, c)) return false;
      }
      return true;
    case Node::Kind::kOr:
      for (const auto& k : n.kids) {
        if (Eval(*k, ds, c)) return true;
      }
      return false;
    case Node::Kind::kNot:
      return !Eval(*n.kids[0], ds, c);
    case Node::Kind::kCompare: {
      if (n.field == Field::kId) {
        const int cmp = cu.id.compare(n.text);
        return CompareNumber(cmp, n.op, 0);
      }
      double x = 0;
      switch (n.field) {
        case Field::kTier:
          x = static_cast<double>(cu.tier);
          break;
        case Field::kRisk:
          if (cu.risk == kNoRisk) return n.op == Op::kNe;
          x = cu.risk;
          break;
        case Field::kNumeric:
          x = NumberAt(Col(ds, n), c);
          break;
        default:
          return false;
      }
      if (std::isnan(x)) return n.op == Op::kNe;
      return CompareNumber(x, n.op, n.number);
    }
    case Node::Kind::kIn: {
      bool hit = false;
      switch (n.field) {
        case Field::kId:
          hit = std::find(n.texts.begin(), n.texts.end(), cu.id) != n.texts.end();
          break;
        case Field::kTier:
        case Field::kRisk:
        case Field::kNumeric: {
          double x = n.field == Field::kTier   ? static_cast<double>(cu.tier)
                     : n.field == Field::kRisk ? (cu.risk == kNoRisk ? NAN : cu.risk)
                                               : NumberAt(Col(ds, n), c);
          if (std::isnan(x)) return n.negate_in;
          hit = std::find(n.numbers.begin(), n.numbers.end(), x) != n.numbers.end();
          break;
        }
        case Field::kRegion:
          hit = std::find(n.codes.begin(), n.codes.end(), cu.region) != n.codes.end();
          break;
        case Field::kTag:
          for (uint32_t code : n.codes) hit = hit || HasCode(cu.tags, code);
          break;
        case Field::kOptOut:
          for (uint32_t ch : n.codes) hit = hit || ((cu.opt_out >> ch) & 1u);
          break;
        case Field::kCategorical: {
          const uint32_t v = CodeAt(Col(ds, n), c);
          if (v == 0) return n.negate_in;  // missing
          hit = std::find(n.codes.begin(), n.codes.end(), v) != n.codes.end();
          break;
        }
      }
      return hit != n.negate_in;
    }
  }
  return false;
}

}  // namespace

Result<Audience> Audience::Compile(std::string_view text, const Dataset& ds) {
  Audience a;
  a.text_ = std::string(text);
  QM_ASSIGN_OR_RETURN(std::vector<Token> toks, Lex(text));
  if (toks.size() == 1) return a;  // empty: everyone
  Parser p(std::move(toks), ds);
  QM_ASSIGN_OR_RETURN(a.root_, p.Parse());
  if (a.root_->kind == Node::Kind::kAll) a.root_.reset();
  return a;
}

bool Audience::Matches(const Dataset& ds, uint32_t index) const { return !root_ || Eval(*root_, ds, index); }

std::vector<uint32_t> Audience::Select(const Dataset& ds) const {
  std::vector<uint32_t> out;
  const uint32_t n = static_cast<uint32_t>(ds.customers.size());
  if (!root_) out.reserve(n);
  for (uint32_t c = 0; c < n; ++c) {
    if (Matches(ds, c)) out.push_back(c);
  }
  return out;
}

Result<std::vector<std::string>> ReadIdFile(const std::string& path) {
  QM_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(path, "audience file"));
  std::vector<std::string> ids;
  for (auto& line : lines) {
    if (line[0] != '#') ids.push_back(std::move(line));
  }
  return ids;
}

}  // namespace qm::push
