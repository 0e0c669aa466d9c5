// The synthetic world: customers, products and content, the hidden latent tastes, and the
// logging policy's pools and targeting table.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iterator>
#include <numeric>
#include <thread>

#include "parallel.h"
#include "qianmian/core/progress.h"
#include "qianmian/metrics/held_out.h"
#include "world.h"

namespace qm::synth::gen {

const char* const kDimNames[kDim] = {"deposit", "wealth",  "equity",   "fixed_income", "insurance", "card",
                                     "loan",    "housing", "car",      "travel",       "education", "retirement",
                                     "health",  "market",  "security", "deals",        "private",   "payroll",
                                     "digital", "gold",    "video",    "depth",        "hidden1",   "hidden2"};
const char* const kChannelNames[4] = {"app_home", "wechat_push", "sms", "app_banner"};
const char* const kRegionNames[kNumRegions] = {"Jinan",  "Qingdao", "Yantai", "Weifang", "Zibo",      "Linyi",
                                               "Jining", "Tai'an",  "Weihai", "Dezhou",  "Liaocheng", "Heze"};
const char* const kLabelNames[kNumLabels] = {
    "payroll", "young_professional", "retiree",  "new_customer", "dormant",           "churn_risk",    "car_owner",
    "parent",  "high_net_worth",     "investor", "homeowner",    "frequent_traveler", "online_shopper"};
const char* const kLifeStageNames[kNumLifeStages] = {"student",       "young_single",   "young_family",
                                                     "mature_family", "pre_retirement", "retired"};
const char* const kOccupationNames[kNumOccupations] = {
    "student", "retired", "civil_servant", "teacher",       "engineer",      "medical",
    "it",      "finance", "self_employed", "manufacturing", "sales_service", "farmer"};

void AliasTable::Build(const std::vector<double>& weights) {
  size_t n = weights.size();
  prob_.assign(n, 0);
  alias_.assign(n, 0);
  if (n == 0) return;
  double total = 0;
  for (double w : weights) total += w;
  if (total <= 0) {
    for (size_t i = 0; i < n; ++i) {
      prob_[i] = 1;
      alias_[i] = static_cast<uint32_t>(i);
    }
    return;
  }
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * n / total;
    (scaled[i] < 1 ? small : large).push_back(static_cast<uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    uint32_t s = small.back(), l = large.back();
    small.pop_back();
    prob_[s] = scaled[s];
    alias_[s] = l;
    scaled[l] = scaled[l] + scaled[s] - 1;
    if (scaled[l] < 1) {
      large.pop_back();
      small.push_back(l);
    }
  }
  for (uint32_t i : large) {
    prob_[i] = 1;
    alias_[i] = i;
  }
  for (uint32_t i : small) {
    prob_[i] = 1;
    alias_[i] = i;
  }
}

bool World::Holds(uint32_t c, uint32_t i) const {
  auto b = holdings.begin() + holding_offsets[c], e = holdings.begin() + holding_offsets[c + 1];
  return std::binary_search(b, e, i);
}

namespace {

// ----------------------------------------------------------------------------------------------
// Item vocabulary.

struct DimW {
  int dim;
  float w;
};

struct CategoryDef {
  const char* name;
  bool product;
  float share;  // share of its kind
  float bias;   // attractiveness
  DimW dims[3];
};

enum Cat : int {
  kCatDeposit,
  kCatWealth,
  kCatFund,
  kCatInsurance,
  kCatCard,
  kCatLoan,
  kCatGold,
  kCatPension,
  kCatMarketNews,
  kCatWealthTips,
  kCatRetirement,
  kCatCardOffers,
  kCatTravel,
  kCatEducation,
  kCatCar,
  kCatHousing,
  kCatInsuranceKnowledge,
  kCatAntiFraud,
  kCatHealth,
  kCatShopping,
  kCatFundInsight,
  kCatAccountService,
  kNumCats
};

const CategoryDef kCats[kNumCats] = {
    {"deposit", true, 0.14f, -0.1f, {{kDimDeposit, 1.5f}, {kDimFixedIncome, 0.3f}, {-1, 0}}},
    {"wealth_management", true, 0.24f, 0.0f, {{kDimWealth, 1.5f}, {kDimFixedIncome, 0.5f}, {-1, 0}}},
    {"fund", true, 0.30f, 0.0f, {{kDimEquity, 1.2f}, {kDimMarket, 0.5f}, {kDimWealth, 0.3f}}},
    {"insurance", true, 0.11f, -0.3f, {{kDimInsurance, 1.5f}, {kDimHealth, 0.4f}, {-1, 0}}},
    {"credit_card", true, 0.08f, 0.2f, {{kDimCard, 1.5f}, {kDimDeals, 0.5f}, {-1, 0}}},
    {"consumer_loan", true, 0.06f, -0.3f, {{kDimLoan, 1.5f}, {-1, 0}, {-1, 0}}},
    {"gold", true, 0.03f, -0.1f, {{kDimGold, 1.5f}, {kDimMarket, 0.3f}, {-1, 0}}},
    {"pension", true, 0.04f, -0.2f, {{kDimRetirement, 1.3f}, {kDimFixedIncome, 0.4f}, {-1, 0}}},
    {"market_news", false, 0.13f, 0.2f, {{kDimMarket, 1.5f}, {kDimEquity, 0.5f}, {-1, 0}}},
    {"wealth_tips", false, 0.11f, 0.0f, {{kDimWealth, 1.0f}, {kDimDeposit, 0.5f}, {kDimDepth, 0.3f}}},
    {"retirement_planning", false, 0.08f, 0.0f, {{kDimRetirement, 1.5f}, {kDimHealth, 0.3f}, {-1, 0}}},
    {"credit_card_offers", false, 0.09f, 0.3f, {{kDimCard, 1.2f}, {kDimDeals, 0.8f}, {-1, 0}}},
    {"travel", false, 0.08f, 0.3f, {{kDimTravel, 1.5f}, {kDimCard, 0.3f}, {-1, 0}}},
    {"education", false, 0.07f, 0.0f, {{kDimEducation, 1.5f}, {-1, 0}, {-1, 0}}},
    {"car", false, 0.07f, 0.0f, {{kDimCar, 1.5f}, {-1, 0}, {-1, 0}}},
    {"housing", false, 0.06f, 0.0f, {{kDimHousing, 1.5f}, {kDimLoan, 0.4f}, {-1, 0}}},
    {"insurance_knowledge", false, 0.06f, -0.3f, {{kDimInsurance, 1.2f}, {kDimHealth, 0.4f}, {-1, 0}}},
    {"anti_fraud", false, 0.05f, -0.2f, {{kDimSecurity, 1.5f}, {-1, 0}, {-1, 0}}},
    {"health", false, 0.06f, 0.1f, {{kDimHealth, 1.5f}, {-1, 0}, {-1, 0}}},
    {"shopping_deals", false, 0.08f, 0.4f, {{kDimDeals, 1.5f}, {kDimDigital, 0.4f}, {-1, 0}}},
    {"fund_insight", false, 0.04f, 0.0f, {{kDimEquity, 1.0f}, {kDimMarket, 0.8f}, {kDimDepth, 0.5f}}},
    {"account_service", false, 0.0f, 0.5f, {{kDimSecurity, 0.5f}, {kDimPayroll, 0.5f}, {-1, 0}}},
};

struct TagDef {
  const char* name;
  DimW dims[2];
};

// Tags: product subtypes, generic product tags, content keywords, content formats.
const TagDef kTags[] = {
    // 0: deposit subtypes
    {"term_deposit", {{kDimDeposit, 0.5f}, {-1, 0}}},
    {"large_cd", {{kDimPrivate, 0.5f}, {kDimDeposit, 0.3f}}},
    {"structured_deposit", {{kDimFixedIncome, 0.5f}, {-1, 0}}},
    {"notice_deposit", {{kDimDeposit, 0.3f}, {kDimDigital, 0.2f}}},
    // 4: wealth management
    {"cash_management", {{kDimDeposit, 0.5f}, {-1, 0}}},
    {"fixed_income", {{kDimFixedIncome, 0.7f}, {-1, 0}}},
    {"mixed_strategy", {{kDimEquity, 0.5f}, {-1, 0}}},
    {"private_banking", {{kDimPrivate, 1.0f}, {-1, 0}}},
    // 8: funds
    {"money_market", {{kDimDeposit, 0.6f}, {-1, 0}}},
    {"bond_fund", {{kDimFixedIncome, 0.7f}, {-1, 0}}},
    {"balanced_fund", {{kDimEquity, 0.5f}, {-1, 0}}},
    {"equity_fund", {{kDimEquity, 0.8f}, {-1, 0}}},
    {"index_fund", {{kDimEquity, 0.6f}, {kDimDigital, 0.2f}}},
    {"sector_tech", {{kDimEquity, 0.5f}, {kDimDigital, 0.5f}}},
    {"sector_healthcare", {{kDimHealth, 0.6f}, {kDimEquity, 0.3f}}},
    {"sector_new_energy", {{kDimEquity, 0.6f}, {kDimCar, 0.3f}}},
    {"qdii", {{kDimEquity, 0.5f}, {kDimDepth, 0.4f}}},
    // 17: insurance
    {"critical_illness", {{kDimHealth, 0.8f}, {-1, 0}}},
    {"medical", {{kDimHealth, 0.6f}, {-1, 0}}},
    {"annuity", {{kDimRetirement, 0.8f}, {-1, 0}}},
    {"accident", {{kDimTravel, 0.4f}, {-1, 0}}},
    {"education_annuity", {{kDimEducation, 1.0f}, {-1, 0}}},
    {"auto_insurance", {{kDimCar, 1.0f}, {-1, 0}}},
    {"investment_linked", {{kDimEquity, 0.5f}, {kDimWealth, 0.3f}}},
    // 24: cards
    {"platinum", {{kDimPrivate, 0.5f}, {kDimTravel, 0.4f}}},
    {"travel_card", {{kDimTravel, 1.0f}, {-1, 0}}},
    {"car_owner_card", {{kDimCar, 1.0f}, {-1, 0}}},
    {"youth_card", {{kDimDigital, 0.8f}, {-1, 0}}},
    {"shopping_card", {{kDimDeals, 0.8f}, {-1, 0}}},
    // 29: loans
    {"consumption_loan", {{kDimDeals, 0.4f}, {-1, 0}}},
    {"car_loan", {{kDimCar, 1.0f}, {-1, 0}}},
    {"renovation_loan", {{kDimHousing, 1.0f}, {-1, 0}}},
    {"education_loan", {{kDimEducation, 0.6f}, {-1, 0}}},
    // 33: gold, pension
    {"gold_accumulation", {{kDimGold, 0.5f}, {-1, 0}}},
    {"physical_gold", {{kDimGold, 0.3f}, {kDimPrivate, 0.2f}}},
    {"personal_pension", {{kDimRetirement, 0.6f}, {kDimPayroll, 0.3f}}},
    {"target_date", {{kDimRetirement, 0.5f}, {kDimEquity, 0.3f}}},
    {"pension_wealth", {{kDimRetirement, 0.5f}, {kDimFixedIncome, 0.3f}}},
    // 38: generic product tags
    {"new_launch", {{kDimDigital, 0.2f}, {-1, 0}}},
    {"online_exclusive", {{kDimDigital, 0.5f}, {-1, 0}}},
    {"limited_time", {{kDimDeals, 0.4f}, {-1, 0}}},
    {"stable_return", {{kDimFixedIncome, 0.3f}, {kDimRetirement, 0.2f}}},
    // 42: content keywords (two or three per topic, in kCats order from market_news)
    {"a_shares", {{kDimEquity, 0.6f}, {-1, 0}}},
    {"bonds", {{kDimFixedIncome, 0.5f}, {-1, 0}}},
    {"macro", {{kDimDepth, 0.5f}, {-1, 0}}},
    {"budgeting", {{kDimDeposit, 0.4f}, {kDimPayroll, 0.3f}}},
    {"beginner", {{kDimDigital, 0.3f}, {kDimDepth, -0.6f}}},
    {"asset_allocation", {{kDimWealth, 0.6f}, {kDimDepth, 0.4f}}},
    {"pension_plan", {{kDimRetirement, 0.6f}, {-1, 0}}},
    {"elderly_care", {{kDimHealth, 0.5f}, {kDimRetirement, 0.3f}}},
    {"cashback", {{kDimDeals, 0.7f}, {-1, 0}}},
    {"points", {{kDimCard, 0.5f}, {-1, 0}}},
    {"installment", {{kDimLoan, 0.6f}, {-1, 0}}},
    {"overseas", {{kDimTravel, 0.5f}, {kDimPrivate, 0.3f}}},
    {"domestic", {{kDimTravel, 0.3f}, {-1, 0}}},
    {"study_abroad", {{kDimEducation, 0.6f}, {kDimTravel, 0.3f}}},
    {"k12", {{kDimEducation, 0.6f}, {-1, 0}}},
    {"new_energy_vehicle", {{kDimCar, 0.5f}, {kDimDigital, 0.3f}}},
    {"car_maintenance", {{kDimCar, 0.4f}, {-1, 0}}},
    {"mortgage_rate", {{kDimHousing, 0.6f}, {kDimLoan, 0.4f}}},
    {"renovation", {{kDimHousing, 0.4f}, {-1, 0}}},
    {"claims", {{kDimInsurance, 0.5f}, {-1, 0}}},
    {"family_protection", {{kDimEducation, 0.3f}, {kDimInsurance, 0.4f}}},
    {"telecom_scam", {{kDimSecurity, 0.6f}, {-1, 0}}},
    {"elderly_scam", {{kDimRetirement, 0.4f}, {kDimSecurity, 0.4f}}},
    {"fitness", {{kDimHealth, 0.4f}, {kDimDigital, 0.2f}}},
    {"medical_care", {{kDimHealth, 0.6f}, {-1, 0}}},
    {"ecommerce", {{kDimDigital, 0.5f}, {kDimDeals, 0.4f}}},
    {"dining", {{kDimDeals, 0.5f}, {-1, 0}}},
    {"fund_manager", {{kDimDepth, 0.6f}, {-1, 0}}},
    {"sip", {{kDimPayroll, 0.4f}, {kDimEquity, 0.3f}}},
    // 71: formats
    {"article", {{kDimVideo, -0.8f}, {kDimDepth, 0.3f}}},
    {"video", {{kDimVideo, 1.0f}, {-1, 0}}},
    {"activity", {{kDimDeals, 0.6f}, {-1, 0}}},
    // 74: service
    {"account_alert", {{kDimSecurity, 0.3f}, {-1, 0}}},
};
constexpr int kNumTags = sizeof(kTags) / sizeof(kTags[0]);
constexpr int kTagArticle = 71, kTagVideo = 72, kTagActivity = 73, kTagAccountAlert = 74;

// Content keywords per content category (index - kCatMarketNews), as tag indexes.
const std::vector<int> kTopicTags[kCatAccountService - kCatMarketNews] = {
    {42, 43, 44}, {45, 46, 47}, {48, 49}, {50, 51, 52}, {53, 54}, {55, 56},    {57, 58},
    {59, 60},     {61, 62},     {63, 64}, {65, 66},     {67, 68}, {69, 70, 42}};

struct ProductType {
  int category;
  int tag;
  std::vector<const char*> names;
  int risk_lo, risk_hi;  // 0 = not an investment product
  uint8_t tiers;         // 0 = all
  float value;
};

constexpr uint8_t kAffluentUp = (1 << 1) | (1 << 2);
constexpr uint8_t kPrivateOnly = 1 << 2;

const std::vector<ProductType>& ProductTypes() {
  static const std::vector<ProductType> types = {
      {kCatDeposit, 0, {"一年期定期存款", "三年期定期存款", "五年期定期存款", "整存整取"}, 0, 0, 0, 20},
      {kCatDeposit, 1, {"大额存单"}, 0, 0, kAffluentUp, 60},
      {kCatDeposit, 2, {"结构性存款", "挂钩黄金结构性存款"}, 1, 1, 0, 30},
      {kCatDeposit, 3, {"七天通知存款", "智能存款"}, 0, 0, 0, 10},
      {kCatWealth, 4, {"天天利", "现金宝"}, 1, 1, 0, 20},
      {kCatWealth, 5, {"半年盈", "一年定开", "稳享固收"}, 2, 2, 0, 50},
      {kCatWealth, 6, {"多元配置", "固收增强"}, 3, 3, 0, 80},
      {kCatWealth, 7, {"私享尊赢"}, 3, 4, kPrivateOnly, 300},
      {kCatFund, 8, {"货币基金"}, 1, 1, 0, 10},
      {kCatFund, 9, {"纯债基金", "短债基金"}, 2, 2, 0, 40},
      {kCatFund, 10, {"稳健混合基金", "平衡配置混合"}, 3, 3, 0, 60},
      {kCatFund, 11, {"成长股票基金", "价值精选股票"}, 4, 4, 0, 80},
      {kCatFund, 12, {"沪深300指数基金", "中证500指数基金"}, 4, 4, 0, 60},
      {kCatFund, 13, {"科技创新混合", "半导体主题基金"}, 5, 5, 0, 90},
      {kCatFund, 14, {"医疗健康股票", "创新药主题基金"}, 4, 5, 0, 90},
      {kCatFund, 15, {"新能源产业基金", "碳中和主题基金"}, 5, 5, 0, 90},
      {kCatFund, 16, {"全球精选(QDII)", "美国科技(QDII)"}, 5, 5, 0, 90},
      {kCatInsurance, 17, {"康宁重疾险", "守护重疾险"}, 0, 0, 0, 150},
      {kCatInsurance, 18, {"安心百万医疗险", "惠民医疗险"}, 0, 0, 0, 40},
      {kCatInsurance, 19, {"金福年金险", "养老年金险"}, 0, 0, 0, 200},
      {kCatInsurance, 20, {"畅行意外险", "出行意外险"}, 0, 0, 0, 20},
      {kCatInsurance, 21, {"学业有成教育金", "成长护航教育年金"}, 0, 0, 0, 180},
      {kCatInsurance, 22, {"车主综合险"}, 0, 0, 0, 60},
      {kCatInsurance, 23, {"财富万能险", "投资连结险"}, 3, 3, 0, 120},
      {kCatCard, 24, {"白金信用卡", "尊享白金卡"}, 0, 0, kAffluentUp, 80},
      {kCatCard, 25, {"旅行信用卡", "航空联名卡"}, 0, 0, 0, 50},
      {kCatCard, 26, {"车主信用卡", "加油联名卡"}, 0, 0, 0, 50},
      {kCatCard, 27, {"青春信用卡", "校园卡"}, 0, 0, 0, 30},
      {kCatCard, 28, {"购物联名信用卡", "商超联名卡"}, 0, 0, 0, 40},
      {kCatLoan, 29, {"消费贷", "信用快贷"}, 0, 0, 0, 100},
      {kCatLoan, 30, {"汽车消费贷", "新能源车贷"}, 0, 0, 0, 150},
      {kCatLoan, 31, {"家装贷", "装修分期"}, 0, 0, 0, 120},
      {kCatLoan, 32, {"助学贷", "留学贷"}, 0, 0, 0, 60},
      {kCatGold, 33, {"积存金"}, 3, 3, 0, 40},
      {kCatGold, 34, {"实物金条", "生肖金"}, 0, 0, 0, 30},
      {kCatPension, 35, {"个人养老金储蓄"}, 0, 0, 0, 50},
      {kCatPension, 36, {"养老目标2040基金", "养老目标2035基金"}, 3, 3, 0, 70},
      {kCatPension, 37, {"养老理财"}, 2, 2, 0, 60},
  };
  return types;
}

const char* const kBrands[] = {"鲁银", "齐鲁", "泰山", "海岳", "安盈", "鑫益", "华泰", "蓝海"};

struct TopicText {
  std::vector<const char*> prefix, subject, suffix, body;
};

const TopicText& Topic(int cat) {
  static const TopicText kTopics[kCatAccountService - kCatMarketNews + 1] = {
      {{"今日市场速递：", "早盘观察：", "收评：", "财经快讯：", "周末要闻："},
       {"A股三大指数", "科技板块", "新能源板块", "债券市场", "人民币汇率", "黄金价格", "消费板块", "医药板块"},
       {"震荡走高", "小幅回调", "放量上涨", "窄幅整理", "迎来反弹"},
       {"市场情绪整体回暖，成交额较上一交易日有所放大。", "分析人士认为短期波动不改长期趋势。",
        "北向资金净流入，机构关注度提升。", "多家机构上调了全年盈利预期。"}},
      {{"理财小课堂：", "一分钟读懂：", "新手必看：", "家庭理财："},
       {"如何做好家庭资产配置", "存款与理财的区别", "工资到手后如何规划", "记账的三个好习惯", "什么是复利",
        "应急资金该留多少"},
       {"", "（上）", "（下）", "，看这篇就够了"},
       {"合理配置资产，既要保证流动性，也要兼顾收益。", "建议先预留三到六个月的生活费作为应急资金。",
        "坚持记账能帮助您看清每一笔开支。", "长期坚持，复利的力量不容小觑。"}},
      {{"养老规划：", "退休前必读：", "银发生活："},
       {"个人养老金账户怎么开", "养老金领取攻略", "如何为退休储备资金", "以房养老靠谱吗", "退休后的稳健理财"},
       {"", "，一文讲清", "，专家这样说"},
       {"个人养老金每年缴存上限为一万二千元，可享受税收优惠。", "越早规划，退休生活越从容。",
        "退休后的理财应以稳健为主，控制回撤。"}},
      {{"刷卡有礼：", "信用卡专享：", "本月福利："},
       {"周五美食五折", "加油满200减30", "境外消费返现", "积分兑换好礼", "分期手续费八折", "新户首刷礼"},
       {"", "，限时参与", "，名额有限"},
       {"活动期间持卡消费即可参与，每户限享一次。", "具体规则以活动页面为准。", "积分可兑换航空里程和精美礼品。"}},
      {{"出行指南：", "假期去哪儿：", "旅行攻略："},
       {"国庆出游省钱攻略", "境外旅行用卡指南", "机场贵宾厅使用说明", "冬季海滨城市推荐", "泰山登山全攻略",
        "青岛周末两日游"},
       {"", "，收藏备用"},
       {"提前规划行程，机票酒店更优惠。", "出境前记得开通境外交易功能。", "旅途中请注意保管好银行卡和证件。"}},
      {{"育儿有道：", "教育金规划：", "升学季："},
       {"子女教育金如何储备", "留学费用早规划", "课外班怎么选", "高考志愿填报指南", "培养孩子的财商"},
       {"", "，家长必读"},
       {"教育支出是家庭的长期刚性支出，宜早做准备。", "从小培养孩子的理财意识很重要。",
        "留学费用受汇率影响较大，可分批换汇。"}},
      {{"车主生活：", "用车指南：", "购车必看："},
       {"新能源车购车补贴解读", "车险续保省钱技巧", "冬季用车保养要点", "车贷与全款怎么选", "ETC办理指南"},
       {"", "，车主收藏"},
       {"冬季气温低，电池续航会有所下降。", "续保前比较多家方案能省下不少保费。", "定期保养让爱车更安全。"}},
      {{"安居置业：", "房贷知识：", "家装指南："},
       {"房贷利率最新调整", "提前还款划算吗", "公积金贷款怎么用", "装修贷款申请流程", "首套房购房攻略"},
       {"", "，一图看懂"},
       {"存量房贷利率调整后，月供将有所减少。", "提前还款前要算清利息和违约金。", "公积金贷款利率低于商业贷款。"}},
      {{"保险课堂：", "保障规划：", "理赔指南："},
       {"重疾险和医疗险的区别", "家庭保障如何配置", "意外险该怎么选", "理赔材料准备清单", "年金险适合哪些人"},
       {"", "，一文说清"},
       {"家庭保障应优先覆盖经济支柱。", "投保时请如实告知健康状况。", "理赔时备齐病历和发票可加快进度。"}},
      {{"防骗提醒：", "反诈课堂：", "警惕！"},
       {"冒充客服退款诈骗", "刷单返利是骗局", "养老投资诈骗新套路", "陌生链接不要点", "屏幕共享要当心"},
       {"", "，转给家人看看"},
       {"银行工作人员不会索要您的验证码。", "凡是要求转账到安全账户的都是诈骗。", "如遇可疑情况请拨打96110咨询。"}},
      {{"健康生活：", "运动打卡：", "养生小贴士："},
       {"秋冬季节如何养生", "每天一万步的好处", "体检报告怎么看", "科学减脂的方法", "老年人健身指南"},
       {"", "，建议收藏"},
       {"规律作息和适量运动是健康的基础。", "每年体检一次，及早发现健康隐患。", "运动前做好热身，避免受伤。"}},
      {{"限时优惠：", "支付有礼：", "本周特惠："},
       {"超市满减活动", "外卖立减券免费领", "电商大促支付立减", "电影票9.9元抢", "商圈消费返现"},
       {"", "，速来领取"},
       {"使用本行卡支付即可享受立减优惠。", "优惠券数量有限，先到先得。", "活动仅限指定商户参与。"}},
      {{"基金研究：", "定投课堂：", "基金经理说："},
       {"基金定投的正确姿势", "如何挑选一只好基金", "债券基金为何下跌", "指数基金入门", "行业主题基金怎么看"},
       {"", "，投资者必读"},
       {"定投贵在坚持，可以摊薄成本。", "挑选基金要看长期业绩和基金经理的稳定性。", "基金有风险，投资需谨慎。"}},
      {{""},
       {"账户变动提醒", "登录安全提醒", "账单出账提醒", "证件到期更新提醒", "大额交易确认提醒"},
       {""},
       {"您的账户有新的动态，请及时查看。", "如非本人操作，请立即联系客服。"}},
  };
  return kTopics[cat - kCatMarketNews];
}

template <typename V>
const char* PickStr(Rng& r, const V& v) {
  return v[r.Below(static_cast<uint32_t>(std::size(v)))];
}

std::string Fmt(const char* f, long long v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// ----------------------------------------------------------------------------------------------
// Customers.

int AgeBand(int age) { return age < 25 ? 0 : age < 35 ? 1 : age < 50 ? 2 : age < 60 ? 3 : 4; }

void MakeCustomer(const World& w, uint32_t index, CustomerRec* c) {
  Rng r(Mix(w.options.seed, index, kStreamCustomer));
  double u = r.Uniform();
  c->tier = u < 0.85 ? 0 : u < 0.98 ? 1 : 2;
  double age_mu = c->tier == 0 ? 40 : c->tier == 1 ? 47 : 52;
  int age = static_cast<int>(std::lround(age_mu + 14 * r.Normal()));
  c->age = static_cast<uint8_t>(std::clamp(age, 18, 85));
  age = c->age;
  c->female = r.Bernoulli(0.52);
  // Life stage.
  int ls;
  if (age < 23)
    ls = r.Bernoulli(0.75) ? 0 : 1;
  else if (age <= 30)
    ls = r.Bernoulli(0.35) ? 2 : 1;
  else if (age <= 45) {
    double x = r.Uniform();
    ls = x < 0.6 ? 2 : x < 0.8 ? 1 : 3;
  } else if (age <= 57)
    ls = r.Bernoulli(0.85) ? 3 : 1;
  else if (age <= 62)
    ls = r.Bernoulli(0.5) ? 4 : 5;
  else
    ls = 5;
  c->life_stage = static_cast<uint8_t>(ls);
  // Occupation.
  if (ls == 0)
    c->occupation = 0;
  else if (ls == 5)
    c->occupation = 1;
  else {
    double ow[kNumOccupations] = {0, 0, 0.08, 0.07, 0.1, 0.06, 0.08, 0.05, 0.14, 0.16, 0.16, 0.08};
    if (c->tier >= 1) {
      ow[8] *= 2.5;
      ow[7] *= 2.5;
      ow[11] *= 0.3;
      ow[9] *= 0.5;
    }
    c->occupation = static_cast<uint8_t>(r.Pick(ow, kNumOccupations));
  }
  // Income (monthly) and assets.
  static const float kOccIncome[kNumOccupations] = {800,   4200,  8000,  7500, 11000, 10000,
                                                    13000, 14000, 12000, 6000, 5500,  3500};
  double career = age < 60 ? 0.75 + 0.5 * std::exp(-std::pow((age - 45) / 14.0, 2)) : 1.0;
  double tier_mult = c->tier == 0 ? 1.0 : c->tier == 1 ? 1.8 : 4.0;
  c->income = static_cast<float>(
      std::round(kOccIncome[c->occupation] * career * tier_mult * std::exp(0.35 * r.Normal()) / 10) * 10);
  if (c->tier == 0) {
    double aum = 25000 * std::exp(0.018 * (age - 40) + 1.2 * r.Normal()) * (c->income / 6000.0);
    c->aum = static_cast<float>(std::min(aum, 499000.0));
  } else if (c->tier == 1) {
    c->aum = static_cast<float>(500000 * std::exp(r.Uniform() * std::log(12.0)));
  } else {
    c->aum = static_cast<float>(6000000 * std::exp(r.Uniform() * std::log(15.0)));
  }
  c->aum = std::round(c->aum / 100) * 100;
  c->region = static_cast<uint8_t>([&] {
    double rw[kNumRegions] = {0.17, 0.19, 0.09, 0.1, 0.07, 0.1, 0.07, 0.05, 0.04, 0.05, 0.04, 0.03};
    return r.Pick(rw, kNumRegions);
  }());
  // Hidden propensities that surface through observable labels.
  double z_invest = r.Normal(), z_travel = r.Normal(), z_shop = r.Normal();
  uint32_t L = 0;
  auto set = [&L](Label l) { L |= 1u << l; };
  bool working = ls != 0 && ls != 5;
  if (working && r.Bernoulli(0.55)) set(kPayroll);
  if (age >= 23 && age <= 35 && c->occupation >= 2 && c->occupation <= 7 && c->income > 7000 && r.Bernoulli(0.85)) {
    set(kYoungProfessional);
  }
  if (ls == 5) set(kRetiree);
  if (r.Bernoulli(0.08)) set(kNewCustomer);
  if (!(L & (1u << kNewCustomer)) && r.Bernoulli(0.07)) set(kDormant);
  if (r.Bernoulli(0.05)) set(kChurnRisk);
  if (age >= 23 && age <= 70 && r.Bernoulli(Sigmoid(static_cast<float>(-0.8 + 1.2 * std::log(c->income / 7000.0)))))
    set(kCarOwner);
  if ((ls == 2 || ls == 3) && r.Bernoulli(0.85)) set(kParent);
  if (c->tier == 2 || (c->tier == 1 && c->aum > 3e6)) set(kHighNetWorth);
  if ((z_invest > 0.6 && c->aum > 30000) || (c->tier >= 1 && z_invest > -0.2)) set(kInvestor);
  if (age > 28 && r.Bernoulli(age > 40 ? 0.7 : 0.45)) set(kHomeowner);
  if (z_travel > 0.9 && c->income > 5000) set(kFrequentTraveler);
  if (age < 50 && z_shop > 0.0) set(kOnlineShopper);
  c->labels = L;
  // Risk tolerance and its assessment.
  double score =
      2.75 + 0.7 * z_invest + 0.3 * std::log10(c->aum / 50000.0 + 0.1) - 0.022 * (age - 40) + 0.6 * r.Normal();
  int risk = static_cast<int>(std::lround(std::clamp(score, 1.0, 5.0)));
  double a = r.Uniform();
  const int64_t days = w.options.days;
  if (a < 0.12) {
    c->risk = 0;  // never assessed
    c->assessed = kNoTime;
  } else {
    c->risk = static_cast<uint8_t>(risk);
    int64_t back;  // days before the period start
    if (a < 0.25)
      back = 400 + r.Below(700);  // expired
    else if (L & (1u << kNewCustomer))
      back = 1 + r.Below(60);
    else
      back = 1 + r.Below(static_cast<uint32_t>(std::max<int64_t>(2, 330 - days)));
    TimeMs t = w.start - back * kMsPerDay - static_cast<TimeMs>(r.Below(12 * 3600)) * 1000;
    c->assessed = w.tz.StartOfDay(t);  // written as a date: local midnight
  }
  // Consent.
  if (r.Bernoulli(0.02)) c->opt_out |= 1u << kChApp;
  if (r.Bernoulli(0.05)) c->opt_out |= 1u << kChPush;
  if (r.Bernoulli(0.08)) c->opt_out |= 1u << kChSms;
  // Activity.
  double act = 0.22 * std::exp(0.7 * r.Normal() - 0.245);
  if (c->HasLabel(kDormant)) act *= 0.08;
  if (c->HasLabel(kNewCustomer)) act *= 1.6;
  if (age < 35) act *= 1.2;
  if (age >= 60) act *= 0.75;
  c->app_rate = static_cast<float>(act);
  c->push_rate =
      (c->opt_out >> kChPush) & 1 ? 0.0f : static_cast<float>(std::min(0.9, 0.12 * std::exp(0.5 * r.Normal() - 0.125)));
  const int persona = c->HasLabel(kInvestor) ? 0 : c->HasLabel(kParent) ? 1 : c->HasLabel(kCarOwner) ? 2 : 3;
  c->segment = static_cast<uint8_t>((c->tier * kNumAgeBands + AgeBand(age)) * kNumPersonas + persona);
  // Planted churn, from its own random stream (the draws above are as they were). The bank's
  // churn_risk tag makes leaving four times as likely: a weak signal, not the truth.
  Rng rc(Mix(w.options.seed, index, kStreamChurn));
  const double leave = w.params.churn_rate * (c->HasLabel(kChurnRisk) ? 4.0 : 0.84);
  if (!c->HasLabel(kDormant) && rc.Uniform() < leave) {
    const double span = static_cast<double>(w.end - w.start);
    c->churn_at = w.start + static_cast<TimeMs>(span * (0.4 + 0.9 * rc.Uniform()));
  }
}

// Observable customer features phi(c) (the columns of customers.csv, encoded).
constexpr int kFAge = 0, kFAge2 = 1, kFBand = 2, kFFemale = 7, kFTier = 8, kFIncome = 11, kFAum = 12, kFRisk = 13,
              kFStage = 19, kFOcc = 25, kFRegion = 37, kFLabel = 49, kNumCustFeatures = kFLabel + kNumLabels;

void CustomerFeatures(const CustomerRec& c, float* f) {
  std::fill(f, f + kNumCustFeatures, 0.0f);
  float az = (c.age - 45) / 15.0f;
  f[kFAge] = az;
  f[kFAge2] = az * az - 1;
  f[kFBand + AgeBand(c.age)] = 1;
  f[kFFemale] = c.female ? 1.0f : -1.0f;
  f[kFTier + c.tier] = 1;
  f[kFIncome] = (std::log10(c.income + 500) - 3.85f) / 0.3f;
  f[kFAum] = (std::log10(c.aum + 1000) - 4.8f) / 0.9f;
  f[kFRisk + c.risk] = 1;
  f[kFStage + c.life_stage] = 1;
  f[kFOcc + c.occupation] = 1;
  f[kFRegion + c.region] = 1;
  for (int l = 0; l < kNumLabels; ++l) f[kFLabel + l] = c.HasLabel(static_cast<Label>(l)) ? 1.0f : 0.0f;
}

struct FeatW {
  int feature;
  int dim;
  float w;
};

// The planted, interpretable part of customer tastes.
const std::vector<FeatW>& CustomerHandWeights() {
  static const std::vector<FeatW> w = {
      {kFAge, kDimRetirement, 0.8f},
      {kFAge, kDimHealth, 0.5f},
      {kFAge, kDimDeposit, 0.5f},
      {kFAge, kDimDigital, -0.7f},
      {kFAge, kDimCard, -0.4f},
      {kFAge, kDimEquity, -0.3f},
      {kFAge, kDimVideo, -0.3f},
      {kFAge, kDimSecurity, 0.4f},
      {kFAge2, kDimVideo, 0.4f},
      {kFBand + 0, kDimDeals, 0.6f},
      {kFBand + 0, kDimVideo, 0.6f},
      {kFTier + 1, kDimWealth, 0.6f},
      {kFTier + 1, kDimEquity, 0.3f},
      {kFTier + 2, kDimPrivate, 1.5f},
      {kFTier + 2, kDimWealth, 0.8f},
      {kFTier + 2, kDimDeals, -0.6f},
      {kFAum, kDimWealth, 0.6f},
      {kFAum, kDimDeposit, 0.3f},
      {kFAum, kDimFixedIncome, 0.3f},
      {kFAum, kDimDepth, 0.3f},
      {kFIncome, kDimCard, 0.3f},
      {kFIncome, kDimTravel, 0.4f},
      {kFIncome, kDimCar, 0.3f},
      {kFIncome, kDimLoan, -0.2f},
      {kFRisk + 0, kDimDeposit, 0.5f},
      {kFRisk + 1, kDimDeposit, 0.7f},
      {kFRisk + 1, kDimEquity, -0.9f},
      {kFRisk + 2, kDimFixedIncome, 0.6f},
      {kFRisk + 3, kDimWealth, 0.4f},
      {kFRisk + 4, kDimEquity, 0.8f},
      {kFRisk + 5, kDimEquity, 1.3f},
      {kFRisk + 5, kDimGold, 0.4f},
      {kFRisk + 5, kDimMarket, 0.6f},
      {kFStage + 0, kDimDigital, 0.6f},
      {kFStage + 0, kDimEducation, 0.5f},
      {kFStage + 1, kDimTravel, 0.4f},
      {kFStage + 2, kDimEducation, 0.7f},
      {kFStage + 2, kDimHousing, 0.6f},
      {kFStage + 3, kDimInsurance, 0.5f},
      {kFStage + 4, kDimRetirement, 0.7f},
      {kFStage + 5, kDimRetirement, 0.6f},
      {kFStage + 5, kDimHealth, 0.5f},
      {kFLabel + kPayroll, kDimPayroll, 1.0f},
      {kFLabel + kPayroll, kDimCard, 0.3f},
      {kFLabel + kYoungProfessional, kDimCard, 0.8f},
      {kFLabel + kYoungProfessional, kDimTravel, 0.5f},
      {kFLabel + kYoungProfessional, kDimDigital, 0.6f},
      {kFLabel + kYoungProfessional, kDimLoan, 0.3f},
      {kFLabel + kRetiree, kDimRetirement, 1.0f},
      {kFLabel + kRetiree, kDimHealth, 0.7f},
      {kFLabel + kRetiree, kDimSecurity, 0.6f},
      {kFLabel + kNewCustomer, kDimDeals, 0.6f},
      {kFLabel + kNewCustomer, kDimDeposit, 0.3f},
      {kFLabel + kChurnRisk, kDimDeals, 0.4f},
      {kFLabel + kChurnRisk, kDimDeposit, 0.3f},
      {kFLabel + kCarOwner, kDimCar, 1.3f},
      {kFLabel + kCarOwner, kDimInsurance, 0.3f},
      {kFLabel + kParent, kDimEducation, 1.3f},
      {kFLabel + kParent, kDimInsurance, 0.5f},
      {kFLabel + kHighNetWorth, kDimPrivate, 0.8f},
      {kFLabel + kHighNetWorth, kDimWealth, 0.6f},
      {kFLabel + kHighNetWorth, kDimGold, 0.4f},
      {kFLabel + kInvestor, kDimEquity, 0.9f},
      {kFLabel + kInvestor, kDimMarket, 1.0f},
      {kFLabel + kInvestor, kDimGold, 0.3f},
      {kFLabel + kInvestor, kDimDepth, 0.4f},
      {kFLabel + kHomeowner, kDimHousing, 1.0f},
      {kFLabel + kHomeowner, kDimLoan, 0.2f},
      {kFLabel + kFrequentTraveler, kDimTravel, 1.3f},
      {kFLabel + kFrequentTraveler, kDimCard, 0.4f},
      {kFLabel + kOnlineShopper, kDimDeals, 0.9f},
      {kFLabel + kOnlineShopper, kDimDigital, 0.4f},
      {kFLabel + kOnlineShopper, kDimCard, 0.3f},
  };
  return w;
}

// Observable item features psi(i): category, tags, risk level.
constexpr int kGCat = 0, kGTag = kNumCats, kGRisk = kGTag + kNumTags, kNumItemFeatures = kGRisk + 6;

// Per-dimension mean and variance of rows[0..n) (n x kDim), sequentially.
void Moments(const float* rows, size_t n, double* mean, double* var) {
  for (int k = 0; k < kDim; ++k) {
    mean[k] = 0;
    var[k] = 0;
  }
  if (n == 0) return;
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < kDim; ++k) mean[k] += rows[i * kDim + k];
  for (int k = 0; k < kDim; ++k) mean[k] /= n;
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < kDim; ++k) {
      double d = rows[i * kDim + k] - mean[k];
      var[k] += d * d;
    }
  for (int k = 0; k < kDim; ++k) var[k] /= n;
}

void BuildItems(World* w) {
  const auto& o = w->options;
  const int64_t n_products = o.products, n_contents = o.contents;
  const int64_t n_services = std::min<int64_t>(10, n_contents / 200);
  w->num_services = static_cast<int>(n_services);
  w->items.resize(static_cast<size_t>(n_products + n_contents));
  w->item_bias.resize(w->items.size());
  w->item_pop.resize(w->items.size());
  const auto& types = ProductTypes();
  double product_share[kNumCats] = {0}, content_share[kNumCats] = {0};
  for (int c = 0; c < kNumCats; ++c) (kCats[c].product ? product_share : content_share)[c] = kCats[c].share;
  std::vector<std::vector<int>> types_of(kNumCats);
  for (size_t t = 0; t < types.size(); ++t) types_of[types[t].category].push_back(static_cast<int>(t));
  const TimeMs period = w->end - w->start;
  const int kNumCampaigns = std::max<int>(3, static_cast<int>((n_products + n_contents) / 150));

  for (size_t j = 0; j < w->items.size(); ++j) {
    Rng r(Mix(o.seed, j, kStreamItem));
    ItemRec& it = w->items[j];
    std::vector<uint16_t> tags;
    float bias = 0;
    bool has_campaign = false;
    if (static_cast<int64_t>(j) < n_products) {
      it.product = true;
      it.id = Fmt("P%05lld", static_cast<long long>(j + 1));
      int cat = r.Pick(product_share, kNumCats);
      const auto& pt = types[types_of[cat][r.Below(static_cast<uint32_t>(types_of[cat].size()))]];
      it.category = static_cast<uint8_t>(cat);
      tags.push_back(static_cast<uint16_t>(pt.tag));
      if (r.Bernoulli(0.25)) tags.push_back(static_cast<uint16_t>(38 + r.Below(4)));
      it.risk = pt.risk_lo == 0 ? 0 : static_cast<uint8_t>(pt.risk_lo + r.Below(pt.risk_hi - pt.risk_lo + 1));
      it.tiers = pt.tiers;
      if (!it.tiers && (cat == kCatWealth || cat == kCatFund) && r.Bernoulli(0.08)) it.tiers = kAffluentUp;
      const char* name = PickStr(r, pt.names);
      if (cat == kCatWealth || cat == kCatFund) {
        it.title = std::string(PickStr(r, kBrands)) + name +
                   (cat == kCatFund ? (r.Bernoulli(0.5) ? "A" : "C") : Fmt("%lld号", 1 + r.Below(60)));
      } else if (pt.tag == 1) {
        it.title = Fmt("2026年第%lld期", 1 + r.Below(40)) + name;
      } else {
        it.title = std::string(PickStr(r, kBrands)) + name;
      }
      // Validity windows: subscription periods of wealth products, launches, campaign windows.
      if ((cat == kCatWealth || pt.tag == 2) && r.Bernoulli(0.4)) {
        it.start = w->start + static_cast<TimeMs>(r.Uniform(-0.5, 0.8) * period);
        it.end = it.start + static_cast<TimeMs>((7 + r.Below(40)) * kMsPerDay);
      } else if (r.Bernoulli(0.08)) {
        it.start = w->start + static_cast<TimeMs>(r.Uniform(0.0, 0.9) * period);  // new launch
      }
      if (r.Bernoulli(0.06))
        it.channels = (1u << kChApp) | (1u << kChBanner);
      else
        it.channels = 1u << kChApp;  // products are not pushed on WeChat
      it.value = std::round(pt.value * std::exp(0.3 * r.Normal()));
      has_campaign = r.Bernoulli(0.15);
      bias = kCats[cat].bias + 0.45f * static_cast<float>(r.Normal());
    } else {
      int64_t k = static_cast<int64_t>(j) - n_products;
      it.product = false;
      it.id = Fmt("M%06lld", static_cast<long long>(k + 1));
      if (k < n_services) {
        it.service = true;
        it.category = kCatAccountService;
        const auto& tt = Topic(kCatAccountService);
        it.title = tt.subject[k % tt.subject.size()];
        it.text = std::string(PickStr(r, tt.body));
        tags = {static_cast<uint16_t>(kTagAccountAlert)};
        it.channels = 1u << kChPush;
        it.value = 0;
        bias = kCats[kCatAccountService].bias + 0.3f * static_cast<float>(r.Normal());
      } else {
        int cat = r.Pick(content_share, kNumCats);
        it.category = static_cast<uint8_t>(cat);
        const auto& kw = kTopicTags[cat - kCatMarketNews];
        tags.push_back(static_cast<uint16_t>(kw[r.Below(static_cast<uint32_t>(kw.size()))]));
        if (r.Bernoulli(0.4)) tags.push_back(static_cast<uint16_t>(kw[r.Below(static_cast<uint32_t>(kw.size()))]));
        if (r.Bernoulli(0.15)) {  // a keyword of another topic
          const auto& other = kTopicTags[r.Below(kCatAccountService - kCatMarketNews)];
          tags.push_back(static_cast<uint16_t>(other[r.Below(static_cast<uint32_t>(other.size()))]));
        }
        double fmt = r.Uniform();
        int format = fmt < 0.6 ? kTagArticle : fmt < 0.85 ? kTagVideo : kTagActivity;
        tags.push_back(static_cast<uint16_t>(format));
        const auto& tt = Topic(cat);
        std::string subject = PickStr(r, tt.subject);
        it.title = std::string(PickStr(r, tt.prefix)) + subject + PickStr(r, tt.suffix);
        if (format == kTagVideo) it.title = "【视频】" + it.title;
        if (format == kTagActivity) it.title = "【活动】" + it.title;
        uint32_t b1 = r.Below(static_cast<uint32_t>(tt.body.size()));
        uint32_t b2 = (b1 + 1 + r.Below(static_cast<uint32_t>(tt.body.size() - 1))) % tt.body.size();
        it.text = "本期关注" + subject + "。" + tt.body[b1] + tt.body[b2];
        // Publication / activity windows.
        if (cat == kCatMarketNews) {
          it.start = w->start + static_cast<TimeMs>(r.Uniform(-0.3, 1.0) * period);
          it.end = it.start + static_cast<TimeMs>((5 + r.Below(10)) * kMsPerDay);
        } else if (format == kTagActivity) {
          it.start = w->start + static_cast<TimeMs>(r.Uniform(-0.3, 0.9) * period);
          it.end = it.start + static_cast<TimeMs>((7 + r.Below(24)) * kMsPerDay);
          has_campaign = r.Bernoulli(0.6);
          if (r.Bernoulli(0.25)) {  // a local activity in one or two cities
            it.regions = static_cast<uint16_t>(1u << r.Below(kNumRegions));
            if (r.Bernoulli(0.4)) it.regions |= static_cast<uint16_t>(1u << r.Below(kNumRegions));
          }
          if (r.Bernoulli(0.3)) it.channels = 1u << kChApp;
        } else if (r.Bernoulli(0.5)) {  // published, then retired after a few weeks
          it.start = w->start + static_cast<TimeMs>(r.Uniform(-1.0, 1.0) * period);
          it.end = it.start + static_cast<TimeMs>((20 + r.Below(40)) * kMsPerDay);
        } else if (r.Bernoulli(0.3)) {
          it.start = w->start + static_cast<TimeMs>(r.Uniform(0.0, 1.0) * period);  // published, evergreen
        }
        if (cat == kCatTravel && r.Bernoulli(0.1)) it.tiers = kAffluentUp;
        if (!it.channels && r.Bernoulli(0.1)) it.channels = 1u << (r.Bernoulli(0.5) ? kChApp : kChPush);
        it.value = 1;
        bias = kCats[cat].bias +
               (format == kTagVideo      ? 0.2f
                : format == kTagActivity ? 0.1f
                                         : 0.0f) +
               0.45f * static_cast<float>(r.Normal());
      }
    }
    if (it.start != kNoTime) it.start = it.start / kMsPerHour * kMsPerHour;  // on the hour
    if (it.end != kNoTime) it.end = it.end / kMsPerHour * kMsPerHour;
    if (it.start != kNoTime && it.end != kNoTime && it.end <= it.start) it.end = it.start + kMsPerDay;
    if (has_campaign && !it.service) {
      int camp = 1 + static_cast<int>(r.Below(static_cast<uint32_t>(kNumCampaigns)));
      it.campaign = Fmt("CMP2026-%03lld", camp);
      it.boost = static_cast<float>(std::round(10 * (1.1 + 0.9 * r.Uniform())) / 10);
    }
    std::sort(tags.begin(), tags.end());
    tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
    it.tag_codes = tags;
    for (size_t t = 0; t < tags.size(); ++t) {
      if (t) it.tags += ';';
      it.tags += kTags[tags[t]].name;
    }
    w->item_bias[j] = bias;
    // The old policy's popularity: log-normal, with a heavier head in larger catalogues.
    const double kind_count = static_cast<double>(it.product ? n_products : n_contents);
    const double sigma = std::clamp(0.8 + 0.3 * std::log10(kind_count / 1000.0), 0.6, 1.5);
    w->item_pop[j] = static_cast<float>(std::exp(0.5 * bias + sigma * r.Normal()));
  }
  for (int c = 0; c < kNumCats; ++c) w->categories.push_back(kCats[c].name);
  for (int t = 0; t < kNumTags; ++t) w->tag_names.push_back(kTags[t].name);
}

void BuildHoldings(World* w, int threads) {
  // Products with a given subtype tag, by index of the first tag (the subtype).
  std::vector<std::vector<uint32_t>> subtype(kNumTags);
  for (uint32_t j = 0; j < w->items.size(); ++j) {
    const auto& it = w->items[j];
    if (!it.product) continue;
    for (uint16_t t : it.tag_codes)
      if (t < 38) subtype[t].push_back(j);
  }
  const size_t n = w->customers.size();
  std::vector<std::vector<uint32_t>> held(n);
  ParallelFor(n, threads, 4096, [&](size_t b, size_t e) {
    for (size_t ci = b; ci < e; ++ci) {
      const CustomerRec& c = w->customers[ci];
      Rng r(Mix(w->options.seed, ci, kStreamCustomer + 100));
      auto& h = held[ci];
      auto pick_from = [&](std::initializer_list<int> tags) {
        std::vector<uint32_t> cand;
        for (int t : tags)
          for (uint32_t j : subtype[t]) {
            const auto& it = w->items[j];
            if (it.tiers && !((it.tiers >> c.tier) & 1)) continue;
            if (it.risk && (c.risk < it.risk)) continue;
            if (it.start != kNoTime && it.start > w->start) continue;
            cand.push_back(j);
          }
        if (!cand.empty()) h.push_back(cand[r.Below(static_cast<uint32_t>(cand.size()))]);
      };
      if (r.Bernoulli(c.tier == 0 ? 0.55 : 0.85)) pick_from({0, 1, 3});
      if (r.Bernoulli(0.25 + (c.HasLabel(kYoungProfessional) ? 0.3 : 0))) pick_from({24, 25, 26, 27, 28});
      if (c.HasLabel(kInvestor) && c.risk > 0) {
        int k = 1 + static_cast<int>(r.Below(3));
        for (int i = 0; i < k; ++i) pick_from({4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
      }
      if (c.HasLabel(kCarOwner) && r.Bernoulli(0.15))
        pick_from({30});
      else if (r.Bernoulli(0.06))
        pick_from({29, 31});
      if (r.Bernoulli(c.HasLabel(kParent) ? 0.2 : 0.07)) pick_from({17, 18, 19, 20, 21});
      std::sort(h.begin(), h.end());
      h.erase(std::unique(h.begin(), h.end()), h.end());
    }
  });
  w->holding_offsets.assign(n + 1, 0);
  for (size_t i = 0; i < n; ++i)
    w->holding_offsets[i + 1] = w->holding_offsets[i] + static_cast<uint32_t>(held[i].size());
  w->holdings.reserve(w->holding_offsets[n]);
  for (auto& h : held) w->holdings.insert(w->holdings.end(), h.begin(), h.end());
}

// Random part of a feature map: rows x kDim, N(0, sd^2), from one sequential stream.
std::vector<float> RandomMap(Rng& r, int rows, float sd) {
  std::vector<float> m(static_cast<size_t>(rows) * kDim);
  for (auto& x : m) x = static_cast<float>(sd * r.Normal());
  return m;
}

void BuildLatents(World* w, int threads) {
  Rng model(Mix(w->options.seed, 0, kStreamModel));
  const size_t n = w->customers.size(), m = w->items.size();
  const float noise_ratio = w->params.unobservable_share / (1 - w->params.unobservable_share);
  // Customers: u = A phi + noise.
  std::vector<float> A = RandomMap(model, kNumCustFeatures, 0.3f);
  for (const auto& fw : CustomerHandWeights()) A[fw.feature * kDim + fw.dim] += fw.w;
  w->customer_latent.assign(n * kDim, 0);
  ParallelFor(n, threads, 8192, [&](size_t b, size_t e) {
    float f[kNumCustFeatures];
    for (size_t c = b; c < e; ++c) {
      CustomerFeatures(w->customers[c], f);
      float* u = &w->customer_latent[c * kDim];
      for (int j = 0; j < kNumCustFeatures; ++j) {
        if (f[j] == 0) continue;
        for (int k = 0; k < kDim; ++k) u[k] += f[j] * A[j * kDim + k];
      }
    }
  });
  const size_t stat_n = std::min<size_t>(n, 50000);
  double mean[kDim], var[kDim], sd_noise[kDim];
  Moments(w->customer_latent.data(), stat_n, mean, var);
  for (int k = 0; k < kDim; ++k) sd_noise[k] = std::sqrt(noise_ratio * var[k]);
  w->customer_latent_observable.assign(n * kDim, 0);
  ParallelFor(n, threads, 8192, [&](size_t b, size_t e) {
    for (size_t c = b; c < e; ++c) {
      Rng r(Mix(w->options.seed, c, kStreamCustomer + 200));
      float* u = &w->customer_latent[c * kDim];
      float* o = &w->customer_latent_observable[c * kDim];
      for (int k = 0; k < kDim; ++k) {
        o[k] = static_cast<float>(u[k] - mean[k]);
        u[k] = static_cast<float>(u[k] - mean[k] + sd_noise[k] * r.Normal());
      }
    }
  });
  w->customer_observable_share.assign(kDim, 0);
  for (int k = 0; k < kDim; ++k)
    w->customer_observable_share[k] = static_cast<float>(var[k] / (var[k] + sd_noise[k] * sd_noise[k] + 1e-12));

  // Items: v = B psi + noise.
  std::vector<float> B = RandomMap(model, kNumItemFeatures, 0.3f);
  for (int c = 0; c < kNumCats; ++c)
    for (const auto& d : kCats[c].dims)
      if (d.dim >= 0) B[(kGCat + c) * kDim + d.dim] += d.w;
  for (int t = 0; t < kNumTags; ++t)
    for (const auto& d : kTags[t].dims)
      if (d.dim >= 0) B[(kGTag + t) * kDim + d.dim] += d.w;
  for (int rk = 1; rk <= 5; ++rk) {
    B[(kGRisk + rk) * kDim + kDimEquity] += 0.3f * (rk - 2.5f);
    B[(kGRisk + rk) * kDim + kDimDeposit] -= 0.2f * (rk - 2.5f);
  }
  w->item_latent.assign(m * kDim, 0);
  for (size_t i = 0; i < m; ++i) {
    const ItemRec& it = w->items[i];
    float* v = &w->item_latent[i * kDim];
    auto add = [&](int row) {
      for (int k = 0; k < kDim; ++k) v[k] += B[row * kDim + k];
    };
    add(kGCat + it.category);
    for (uint16_t t : it.tag_codes) add(kGTag + t);
    add(kGRisk + it.risk);
  }
  Moments(w->item_latent.data(), std::min<size_t>(m, 50000), mean, var);
  for (int k = 0; k < kDim; ++k) sd_noise[k] = std::sqrt(noise_ratio * var[k]);
  for (size_t i = 0; i < m; ++i) {
    Rng r(Mix(w->options.seed, i, kStreamItem + 100));
    float* v = &w->item_latent[i * kDim];
    for (int k = 0; k < kDim; ++k) v[k] = static_cast<float>(v[k] + sd_noise[k] * r.Normal());
  }
  w->item_observable_share.assign(kDim, 0);
  for (int k = 0; k < kDim; ++k)
    w->item_observable_share[k] = static_cast<float>(var[k] / (var[k] + sd_noise[k] * sd_noise[k] + 1e-12));

  // Scale both sides so that the affinity has unit variance over random pairs.
  double s1 = 0, s2 = 0;
  const int pairs = 40000;
  for (int p = 0; p < pairs; ++p) {
    uint32_t c = model.Below(static_cast<uint32_t>(n)), i = model.Below(static_cast<uint32_t>(m));
    double a = w->Affinity(c, i);
    s1 += a;
    s2 += a * a;
  }
  double sd = std::sqrt(std::max(1e-9, s2 / pairs - (s1 / pairs) * (s1 / pairs)));
  w->affinity_scale = sd;
  float f = static_cast<float>(1.0 / std::sqrt(sd));
  for (auto& x : w->customer_latent) x *= f;
  for (auto& x : w->customer_latent_observable) x *= f;
  for (auto& x : w->item_latent) x *= f;
}

void BuildPool(const World& w, const std::vector<uint32_t>& items, Pool* p) {
  p->items = items;
  std::vector<double> pop(items.size());
  for (size_t k = 0; k < items.size(); ++k) pop[k] = w.item_pop[items[k]];
  p->popularity.Build(pop);
  p->by_category.assign(kNumCats, {});
  p->category_items.assign(kNumCats, {});
  p->category_mass.assign(kNumCats, 0);
  for (uint32_t i : items) p->by_category[w.items[i].category].push_back(i);
  for (int c = 0; c < kNumCats; ++c) {
    std::vector<double> sq;
    for (uint32_t i : p->by_category[c]) sq.push_back(std::sqrt(w.item_pop[i]));
    for (double x : sq) p->category_mass[c] += x;
    p->category_items[c].Build(sq);
  }
  for (int s = 0; s < kNumSegments; ++s) {
    std::vector<double> cw(kNumCats);
    for (int c = 0; c < kNumCats; ++c) cw[c] = w.targeting[s * kNumCats + c] * p->category_mass[c];
    p->segment_category[s].Build(cw);
  }
}

void BuildPolicy(World* w) {
  const size_t n = w->customers.size(), m = w->items.size();
  // Segment targeting: marketers' coarse knowledge of which categories a segment likes.
  std::vector<double> vbar(kNumCats * kDim, 0.0);
  std::vector<int> count(kNumCats, 0);
  for (size_t i = 0; i < m; ++i) {
    int c = w->items[i].category;
    ++count[c];
    for (int k = 0; k < kDim; ++k) vbar[c * kDim + k] += w->item_latent[i * kDim + k];
  }
  for (int c = 0; c < kNumCats; ++c)
    if (count[c])
      for (int k = 0; k < kDim; ++k) vbar[c * kDim + k] /= count[c];
  std::vector<double> ubar(kNumSegments * kDim, 0.0);
  std::vector<int> seg_n(kNumSegments, 0);
  for (size_t c = 0; c < std::min<size_t>(n, 50000); ++c) {
    int s = w->customers[c].segment;
    ++seg_n[s];
    for (int k = 0; k < kDim; ++k) ubar[s * kDim + k] += w->customer_latent[c * kDim + k];
  }
  w->targeting.assign(kNumSegments * kNumCats, 1.0f);
  for (int s = 0; s < kNumSegments; ++s) {
    if (!seg_n[s]) continue;
    double x[kNumCats], mu = 0, sd = 0;
    int k_used = 0;
    for (int c = 0; c < kNumCats; ++c) {
      x[c] = 0;
      for (int k = 0; k < kDim; ++k) x[c] += ubar[s * kDim + k] / seg_n[s] * vbar[c * kDim + k];
      if (count[c]) {
        mu += x[c];
        ++k_used;
      }
    }
    if (!k_used) continue;
    mu /= k_used;
    for (int c = 0; c < kNumCats; ++c)
      if (count[c]) sd += (x[c] - mu) * (x[c] - mu);
    sd = std::sqrt(sd / k_used) + 1e-9;
    for (int c = 0; c < kNumCats; ++c)
      w->targeting[s * kNumCats + c] = static_cast<float>(std::exp(w->params.segment_temperature * (x[c] - mu) / sd));
  }
  std::vector<uint32_t> ap, ac, pc;
  for (uint32_t i = 0; i < m; ++i) {
    const ItemRec& it = w->items[i];
    if (it.service) {
      w->service_items.push_back(i);
      continue;
    }
    if (it.product) {
      if (it.AllowsChannel(kChApp)) ap.push_back(i);
      continue;
    }
    if (it.AllowsChannel(kChApp)) ac.push_back(i);
    if (it.AllowsChannel(kChPush)) pc.push_back(i);
  }
  BuildPool(*w, ap, &w->app_products);
  BuildPool(*w, ac, &w->app_contents);
  BuildPool(*w, pc, &w->push_contents);
}

}  // namespace

Status BuildWorld(const BankOptions& options, World* w) {
  w->options = options;
  auto tz = TimeZone::Load("Asia/Shanghai");
  if (!tz.ok()) return tz.status().Annotate("generate needs the Asia/Shanghai time zone");
  w->tz = *tz;
  w->end = options.end;
  w->start = options.end - options.days * kMsPerDay;
  // The period is `days` days of 24 hours back from `end` (any instant), hence UTC days.
  w->holdout_start = metrics::HoldoutStart(options.end, metrics::HoldoutDays(options.days));
  const int threads = options.threads;
  const size_t n = static_cast<size_t>(options.customers);
  w->customers.resize(n);
  w->customer_ids.resize(n);
  {
    Progress progress("generate: customers", n, "");
    const int width = std::max(7, static_cast<int>(std::to_string(n).size()));
    ParallelFor(n, threads, 8192, [&](size_t b, size_t e) {
      char buf[32];
      for (size_t c = b; c < e; ++c) {
        MakeCustomer(*w, static_cast<uint32_t>(c), &w->customers[c]);
        std::snprintf(buf, sizeof buf, "C%0*zu", width, c + 1);
        w->customer_ids[c] = buf;
      }
      progress.Add(e - b);
    });
  }
  BuildItems(w);
  BuildHoldings(w, threads);
  BuildLatents(w, threads);
  BuildPolicy(w);
  return Status::Ok();
}

}  // namespace qm::synth::gen
