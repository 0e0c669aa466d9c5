// MovieLens 100K -> SPEC §2 folder (see importers.h for the mapping).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_map>

#include "import_common.h"
#include "qianmian/core/csv.h"
#include "qianmian/core/progress.h"
#include "qianmian/tools/importers.h"

namespace qm::tools {

namespace {

namespace fs = std::filesystem;
using import_internal::BadLine;
using import_internal::OutputFolder;
using import_internal::ParseInt64;
using import_internal::Quoted;

// u.genre as distributed, used when the folder has no u.genre.
const char* const kDefaultGenres[] = {"unknown",   "Action",   "Adventure",   "Animation", "Children's",
                                      "Comedy",    "Crime",    "Documentary", "Drama",     "Fantasy",
                                      "Film-Noir", "Horror",   "Musical",     "Mystery",   "Romance",
                                      "Sci-Fi",    "Thriller", "War",         "Western"};

constexpr int kUserFields = 5;       // id|age|gender|occupation|zip
constexpr int kItemFixedFields = 5;  // id|title|release date|video release date|IMDb URL
constexpr int kRatingFields = 4;     // user \t item \t rating \t timestamp

struct User {
  int64_t id;
  std::string age, gender, occupation, zip;
};

struct Movie {
  int64_t id;
  std::string title, released;
  std::vector<uint16_t> genres;  // indexes into the genre list, in file order
};

struct Rating {
  TimeMs ts;
  uint32_t user;   // index into users
  uint32_t movie;  // index into movies
  uint8_t rating;  // 1..5
};

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// Latin-1 (ISO-8859-1) bytes -> UTF-8: each byte is the code point of the same value.
std::string Latin1ToUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 16);
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

Status RequireFile(const std::string& path, const char* what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return Status::NotFound("'" + path + "' is missing (the MovieLens 100K " + what + ")");
  }
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IoError("read of '" + path + "' failed");
  return ss.str();
}

// A positive integer id cell.
bool ParseId(std::string_view cell, int64_t* id) { return ParseInt64(cell, id) && *id > 0; }

// Checks the common shape of a record: no CSV error, `want` fields.
Status CheckShape(const std::string& path, const CsvRecord& rec, size_t want) {
  if (!rec.error.empty()) return BadLine(path, rec.line, rec.error);
  if (rec.fields.size() != want) {
    return BadLine(path, rec.line,
                   "expected " + std::to_string(want) + " fields, found " + std::to_string(rec.fields.size()));
  }
  return Status::Ok();
}

// u.genre: "name|index" per line, indexes 0..n-1 in order. Default list when absent.
Result<std::vector<std::string>> ReadGenres(const std::string& dir) {
  std::string path = (fs::path(dir) / "u.genre").string();
  std::vector<std::string> genres;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    genres.assign(std::begin(kDefaultGenres), std::end(kDefaultGenres));
    return genres;
  }
  QM_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  if (!IsValidUtf8(text)) text = Latin1ToUtf8(text);
  auto reader = CsvReader::FromString(text, '|');
  CsvRecord rec;
  while (reader->Next(&rec)) {
    QM_RETURN_IF_ERROR(CheckShape(path, rec, 2));
    int64_t index = -1;
    if (!ParseInt64(Trim(rec.fields[1]), &index) || index != static_cast<int64_t>(genres.size())) {
      return BadLine(path, rec.line,
                     "genre index " + Quoted(rec.fields[1]) + " is not " + std::to_string(genres.size()) +
                         " (genres must be listed in order)");
    }
    std::string name(Trim(rec.fields[0]));
    if (name.empty()) return BadLine(path, rec.line, "empty genre name");
    genres.push_back(std::move(name));
  }
  if (genres.empty()) return Status::InvalidArgument("'" + path + "' lists no genres");
  return genres;
}

Status ReadUsers(const std::string& path, std::vector<User>* users, std::unordered_map<int64_t, uint32_t>* index) {
  QM_RETURN_IF_ERROR(RequireFile(path, "user file"));
  QM_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(path, '|'));
  CsvRecord rec;
  while (reader->Next(&rec)) {
    QM_RETURN_IF_ERROR(CheckShape(path, rec, kUserFields));
    User u;
    auto id_cell = Trim(rec.fields[0]);
    if (!ParseId(id_cell, &u.id))
      return BadLine(path, rec.line, "user id " + Quoted(id_cell) + " is not a positive integer");
    auto age_cell = Trim(rec.fields[1]);
    int64_t age = 0;
    if (!ParseInt64(age_cell, &age) || age < 0 || age > 200) {
      return BadLine(path, rec.line, "age " + Quoted(age_cell) + " is not a number of years");
    }
    u.age = std::to_string(age);
    u.gender = std::string(Trim(rec.fields[2]));
    u.occupation = std::string(Trim(rec.fields[3]));
    u.zip = std::string(Trim(rec.fields[4]));
    if (!index->emplace(u.id, static_cast<uint32_t>(users->size())).second) {
      return BadLine(path, rec.line, "duplicate user id " + std::to_string(u.id));
    }
    users->push_back(std::move(u));
  }
  QM_RETURN_IF_ERROR(reader->status().Annotate(path));
  if (users->empty()) return Status::InvalidArgument("'" + path + "' holds no users");
  return Status::Ok();
}

Status ReadMovies(const std::string& path, const std::vector<std::string>& genres, std::vector<Movie>* movies,
                  std::unordered_map<int64_t, uint32_t>* index) {
  QM_RETURN_IF_ERROR(RequireFile(path, "movie file"));
  QM_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  // As distributed, u.item is Latin-1; a copy someone already converted is valid UTF-8.
  if (!IsValidUtf8(text)) text = Latin1ToUtf8(text);
  const size_t want = kItemFixedFields + genres.size();
  auto reader = CsvReader::FromString(text, '|');
  CsvRecord rec;
  while (reader->Next(&rec)) {
    QM_RETURN_IF_ERROR(CheckShape(path, rec, want));
    Movie m;
    auto id_cell = Trim(rec.fields[0]);
    if (!ParseId(id_cell, &m.id))
      return BadLine(path, rec.line, "movie id " + Quoted(id_cell) + " is not a positive integer");
    m.title = std::string(Trim(rec.fields[1]));
    m.released = std::string(Trim(rec.fields[2]));
    for (size_t g = 0; g < genres.size(); ++g) {
      auto flag = Trim(rec.fields[kItemFixedFields + g]);
      if (flag == "1") {
        m.genres.push_back(static_cast<uint16_t>(g));
      } else if (flag != "0") {
        return BadLine(path, rec.line, "genre flag " + genres[g] + " is " + Quoted(flag) + ", not 0 or 1");
      }
    }
    if (!index->emplace(m.id, static_cast<uint32_t>(movies->size())).second) {
      return BadLine(path, rec.line, "duplicate movie id " + std::to_string(m.id));
    }
    movies->push_back(std::move(m));
  }
  if (movies->empty()) return Status::InvalidArgument("'" + path + "' holds no movies");
  return Status::Ok();
}

Status ReadRatings(const std::string& path, const std::unordered_map<int64_t, uint32_t>& users,
                   const std::unordered_map<int64_t, uint32_t>& movies, int min_rating, std::vector<Rating>* ratings,
                   uint64_t* skipped) {
  QM_RETURN_IF_ERROR(RequireFile(path, "rating file"));
  QM_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(path, '\t'));
  Progress progress("reading u.data", reader->size(), "B");
  CsvRecord rec;
  uint64_t n = 0;
  while (reader->Next(&rec)) {
    QM_RETURN_IF_ERROR(CheckShape(path, rec, kRatingFields));
    int64_t user_id = 0, movie_id = 0, rating = 0, seconds = 0;
    auto user_cell = Trim(rec.fields[0]);
    auto movie_cell = Trim(rec.fields[1]);
    auto rating_cell = Trim(rec.fields[2]);
    auto ts_cell = Trim(rec.fields[3]);
    if (!ParseId(user_cell, &user_id))
      return BadLine(path, rec.line, "user id " + Quoted(user_cell) + " is not a positive integer");
    if (!ParseId(movie_cell, &movie_id))
      return BadLine(path, rec.line, "movie id " + Quoted(movie_cell) + " is not a positive integer");
    if (!ParseInt64(rating_cell, &rating) || rating < 1 || rating > 5) {
      return BadLine(path, rec.line, "rating " + Quoted(rating_cell) + " is not a whole number from 1 to 5");
    }
    if (!ParseInt64(ts_cell, &seconds) || seconds < 0 || seconds > std::numeric_limits<TimeMs>::max() / kMsPerSecond) {
      return BadLine(path, rec.line, "timestamp " + Quoted(ts_cell) + " is not Unix seconds");
    }
    auto u = users.find(user_id);
    if (u == users.end())
      return BadLine(path, rec.line, "rating by unknown user " + std::to_string(user_id) + " (not in u.user)");
    auto m = movies.find(movie_id);
    if (m == movies.end())
      return BadLine(path, rec.line, "rating of unknown movie " + std::to_string(movie_id) + " (not in u.item)");
    if (rating < min_rating) {
      ++*skipped;
    } else {
      ratings->push_back({seconds * kMsPerSecond, u->second, m->second, static_cast<uint8_t>(rating)});
    }
    if ((++n & 0xFFF) == 0) progress.Set(reader->bytes_read());
  }
  progress.Set(reader->bytes_read());
  progress.Finish();
  return reader->status().Annotate(path);
}

std::string UserId(int64_t id) { return "u" + std::to_string(id); }
std::string MovieId(int64_t id) { return "m" + std::to_string(id); }

}  // namespace

Status ImportMovieLens(const std::string& dir, const std::string& out, const MovieLensOptions& options,
                       ImportStats* stats) {
  ImportStats local;
  if (!stats) stats = &local;
  *stats = ImportStats();
  if (options.min_rating < 1 || options.min_rating > 5) {
    return Status::InvalidArgument("min_rating " + std::to_string(options.min_rating) + " is not in 1..5");
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::NotFound("MovieLens folder '" + dir + "' does not exist");
  auto file = [&](const char* name) { return (fs::path(dir) / name).string(); };

  // Read and validate everything first: a bad input writes nothing.
  QM_ASSIGN_OR_RETURN(std::vector<std::string> genres, ReadGenres(dir));
  std::vector<User> users;
  std::unordered_map<int64_t, uint32_t> user_index;
  QM_RETURN_IF_ERROR(ReadUsers(file("u.user"), &users, &user_index));
  std::vector<Movie> movies;
  std::unordered_map<int64_t, uint32_t> movie_index;
  QM_RETURN_IF_ERROR(ReadMovies(file("u.item"), genres, &movies, &movie_index));
  std::vector<Rating> ratings;
  QM_RETURN_IF_ERROR(
      ReadRatings(file("u.data"), user_index, movie_index, options.min_rating, &ratings, &stats->skipped));
  std::stable_sort(ratings.begin(), ratings.end(), [](const Rating& a, const Rating& b) { return a.ts < b.ts; });

  QM_ASSIGN_OR_RETURN(auto folder, OutputFolder::Create(out));
  {
    QM_ASSIGN_OR_RETURN(CsvWriter * w, folder->Open("customers.csv"));
    w->Row({"customer_id", "tier", "age", "gender", "occupation", "zip"});
    for (const User& u : users) {
      w->Field(UserId(u.id));
      w->RawField("mass");
      w->Field(u.age);
      w->Field(u.gender);
      w->Field(u.occupation);
      w->Field(u.zip);
      w->EndRow();
    }
    stats->customers = users.size();
  }
  {
    QM_ASSIGN_OR_RETURN(CsvWriter * w, folder->Open("items.csv"));
    w->Row({"item_id", "kind", "title", "category", "tags", "text"});
    std::string tags;
    for (const Movie& m : movies) {
      tags.clear();
      for (auto g : m.genres) {
        if (!tags.empty()) tags += ';';
        tags += genres[g];
      }
      w->Field(MovieId(m.id));
      w->RawField("content");
      w->Field(m.title);
      w->Field(m.genres.empty() ? std::string_view() : std::string_view(genres[m.genres[0]]));
      w->Field(tags);
      w->Field(m.released);
      w->EndRow();
    }
    stats->items = movies.size();
  }
  {
    QM_ASSIGN_OR_RETURN(CsvWriter * w, folder->Open("events.csv"));
    w->Row({"ts", "customer_id", "item_id", "type", "channel", "rating"});
    Progress progress("writing events", ratings.size());
    uint64_t n = 0;
    std::vector<std::string> user_ids, movie_ids;
    for (const User& u : users) user_ids.push_back(UserId(u.id));
    for (const Movie& m : movies) movie_ids.push_back(MovieId(m.id));
    for (const Rating& r : ratings) {
      w->Field(static_cast<int64_t>(r.ts));
      w->RawField(user_ids[r.user]);
      w->RawField(movie_ids[r.movie]);
      w->RawField("click");
      w->RawField("app_home");
      w->Field(static_cast<int>(r.rating));
      w->EndRow();
      if ((++n & 0xFFF) == 0) progress.Set(n);
    }
    progress.Set(n);
    progress.Finish();
    stats->clicks = ratings.size();
    stats->events = ratings.size();
  }
  QM_RETURN_IF_ERROR(
      folder->WriteText("schema.toml", import_internal::SchemaToml({"age"}, {"gender", "occupation", "zip"})));
  return folder->Commit();
}

}  // namespace qm::tools
