// meshguardctl completion bash | zsh | fish — shell completion generated from the same CLI11
// command tree that parses the command line, so a new command or flag completes without anyone
// editing a script. Completes commands, sub-commands, flags, and resource types after
// get / describe / delete.
#include <iostream>
#include <set>

#include "commands.h"
#include "kinds.h"

namespace mg::ctl {
namespace {

struct Command {
  std::string path;  // "get", "workload list"; "" for meshguardctl itself
  std::string description;
  std::vector<std::string> subcommands;
  std::vector<std::string> flags;                            // "--namespace", "-n"
  std::vector<std::pair<std::string, std::string>> options;  // (flag, description) for fish
};

void walk(const CLI::App* app, const std::string& path, std::vector<Command>& out) {
  Command c;
  c.path = path;
  c.description = app->get_description();
  for (const auto* opt : app->get_options()) {
    if (opt->get_positional()) continue;
    for (const auto& l : opt->get_lnames()) {
      c.flags.push_back("--" + l);
      c.options.emplace_back("--" + l, opt->get_description());
    }
    for (const auto& s : opt->get_snames()) c.flags.push_back("-" + s);
  }
  const size_t self = out.size();
  out.push_back(c);
  for (const auto* sub : app->get_subcommands({})) {
    out[self].subcommands.push_back(sub->get_name());  // not out.back(): the walk below appends
    walk(sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
  }
}

bool takes_resource_type(const std::string& path) {
  return path == "get" || path == "describe" || path == "delete";
}

std::string resource_words() {
  std::string out = "all";
  for (const auto& k : all_kinds()) out += std::string(" ") + k.short_name + " " + k.plural;
  return out;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

void print_bash(const std::vector<Command>& cmds) {
  std::cout << "# meshguardctl completion for bash: source <(meshguardctl completion bash)\n"
               "_meshguardctl() {\n"
               "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" path=\"\" w i words\n"
               "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
               "    w=\"${COMP_WORDS[i]}\"\n"
               "    case \"$w\" in -*) continue ;; esac\n"
               "    case \"${path:+$path }$w\" in\n";
  for (const auto& c : cmds) {
    if (!c.path.empty()) std::cout << "      \"" << c.path << "\") path=\"" << c.path << "\" ;;\n";
  }
  std::cout << "    esac\n  done\n  case \"$path\" in\n";
  for (const auto& c : cmds) {
    std::string words = join(c.subcommands) + " " + join(c.flags);
    if (takes_resource_type(c.path)) words += " " + resource_words();
    std::cout << "    \"" << c.path << "\") words=\"" << words << "\" ;;\n";
  }
  std::cout << "  esac\n"
               "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
               "}\n"
               "complete -o default -F _meshguardctl meshguardctl\n";
}

std::string fish_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) {
    if (ch == '\'' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "'";
}

void print_fish(const std::vector<Command>& cmds) {
  std::cout << "# meshguardctl completion for fish: meshguardctl completion fish | source\n"
               "complete -c meshguardctl -f\n";
  for (const auto& c : cmds) {
    // The condition under which this command's words apply: its path has been typed, and none of
    // its sub-commands yet.
    std::string cond;
    if (c.path.empty()) {
      cond = "__fish_use_subcommand";
    } else {
      cond = "__fish_seen_subcommand_from " + c.path.substr(c.path.rfind(' ') + 1);
      if (c.path.find(' ') != std::string::npos)
        cond += "; and __fish_seen_subcommand_from " + c.path.substr(0, c.path.find(' '));
      if (!c.subcommands.empty()) cond += "; and not __fish_seen_subcommand_from " + join(c.subcommands);
    }
    for (const auto& sub : c.subcommands) {
      std::string desc;
      for (const auto& d : cmds) {
        if (d.path == (c.path.empty() ? sub : c.path + " " + sub)) desc = d.description;
      }
      std::cout << "complete -c meshguardctl -n " << fish_quote(cond) << " -a " << sub << " -d "
                << fish_quote(desc) << "\n";
    }
    for (const auto& [flag, desc] : c.options)
      std::cout << "complete -c meshguardctl -n " << fish_quote(cond) << " -l " << flag.substr(2) << " -d "
                << fish_quote(desc) << "\n";
    if (takes_resource_type(c.path))
      std::cout << "complete -c meshguardctl -n " << fish_quote(cond) << " -a "
                << fish_quote(resource_words()) << "\n";
  }
}

}  // namespace

void register_completion_command(CLI::App& app, Action& action) {
  static std::string shell;
  auto* cmd = app.add_subcommand("completion", "Print a shell completion script (bash | zsh | fish)");
  cmd->add_option("shell", shell, "bash | zsh | fish")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  cmd->footer(
      "  bash:  source <(meshguardctl completion bash)\n"
      "  zsh:   source <(meshguardctl completion zsh)\n"
      "  fish:  meshguardctl completion fish | source");
  cmd->callback([&action, &app] {
    action = [&app] {
      std::vector<Command> cmds;
      walk(&app, "", cmds);
      if (shell == "fish") {
        print_fish(cmds);
      } else {
        // zsh runs the bash function through its bash compatibility layer.
        if (shell == "zsh") std::cout << "autoload -U +X bashcompinit && bashcompinit\n";
        print_bash(cmds);
      }
      return 0;
    };
  });
}

}  // namespace mg::ctl
