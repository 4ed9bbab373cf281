// meshguardctl/lib/selector.h — kubectl's -l/--selector label queries, matched against
// metadata.labels. Requirements are separated by commas and all must hold:
//   key=value  key==value  key!=value  key in (v1,v2)  key notin (v1,v2)  key  !key
// As in Kubernetes, `key!=value` and `notin` also match objects without the key. Pure: no I/O.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mg::ctl {

class LabelSelector {
 public:
  // Error code ctl.bad_selector, naming the requirement it could not read. "" selects everything.
  static Result<LabelSelector> parse(std::string_view text);
  bool matches(const std::map<std::string, std::string>& labels) const;
  bool empty() const { return reqs_.empty(); }

 private:
  enum class Op { Equals, NotEquals, In, NotIn, Exists, NotExists };
  struct Requirement {
    std::string key;
    Op op = Op::Exists;
    std::vector<std::string> values;
  };
  std::vector<Requirement> reqs_;
};

}  // namespace mg::ctl
