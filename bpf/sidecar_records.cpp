// The runtime's own per-map counts, read out of the traced processes.
//
// The runtime counts every access itself while the sidecar is attached
// (runtime/mg_stats_record.h: per-thread counters, no trap per access), and
// publishes the records from one exported registry, mapguard_sidecar_registry.
// This file finds that registry in a process (its address comes with the
// runtime's init and stats_handover probes; for --pid, from the runtime's
// dynamic symbol table and /proc/PID/maps), copies the records out with
// process_vm_readv, and turns them into the per-map rows the report and the
// metrics show. It also writes the registry's two words the sidecar owns:
// the control word (which maps the kernel watches) and the exit hand-over's
// acknowledgement.
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <sstream>

#include "mg_stats_record.h"
#include "sidecar.h"

namespace sidecar {

namespace {

bool ReadMemory(int pid, uint64_t addr, void *out, size_t size) {
  iovec local = {out, size}, remote = {reinterpret_cast<void *>(addr), size};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == ssize_t(size);
}

bool WriteMemory(int pid, uint64_t addr, const void *in, size_t size) {
  iovec local = {const_cast<void *>(in), size}, remote = {reinterpret_cast<void *>(addr), size};
  return process_vm_writev(pid, &local, 1, &remote, 1, 0) == ssize_t(size);
}

// A NUL-terminated string of the process, at most `max` bytes, read a page
// at a time (a read may not cross into an unmapped page).
std::string ReadString(int pid, uint64_t addr, size_t max) {
  std::string out;
  char buf[256];
  while (addr && out.size() < max) {
    size_t in_page = 4096 - (addr & 4095);
    size_t n = std::min({sizeof(buf), in_page, max - out.size()});
    if (!ReadMemory(pid, addr, buf, n)) break;
    size_t len = strnlen(buf, n);
    out.append(buf, len);
    if (len < n) break;
    addr += n;
  }
  return out;
}

void CopyText(char *dst, size_t cap, const std::string &s) {
  size_t n = std::min(cap - 1, s.size());
  memcpy(dst, s.data(), n);
  dst[n] = 0;
}

SiteNames NamesOf(int pid, uint64_t site_addr, std::map<uint64_t, SiteNames> &cache) {
  auto it = cache.find(site_addr);
  if (it != cache.end()) return it->second;
  SiteNames names;
  mg_site site;
  if (site_addr && ReadMemory(pid, site_addr, &site, sizeof(site))) {
    names.type = ReadString(pid, reinterpret_cast<uintptr_t>(site.map_type), MGS_TYPE_LEN - 1);
    names.name = ReadString(pid, reinterpret_cast<uintptr_t>(site.map_name), MGS_NAME_LEN - 1);
  }
  cache[site_addr] = names;
  return names;
}

// One record as a row, the shape the report and the metrics take.
mgs_map_stats RowOf(const mapguard::MapRecord &m) {
  const mapguard::MapUsage u = mapguard::UsageOf(m);
  mgs_map_stats s{};
  s.reads = u.reads;
  s.writes = u.writes;
  s.iterations = u.iterations;
  s.rehashes = u.rehashes;
  s.users = u.threads;
  s.threads = u.threads + u.lifecycle_threads;
  s.writer_threads = u.writer_threads;
  s.nonwriter_iterations = u.nonwriter_iterations;
  s.shared_writes = u.shared_writes;
  s.switches = u.switches;
  s.lock_waits = u.contended_locks;
  s.moved = u.moved;
  s.max_size = m.has_buckets ? m.max_size : 0;
  s.max_buckets = m.max_buckets;
  s.max_load_milli = m.max_load_milli;
  if (m.spread_measured) {
    s.spread_keys = m.spread.size;
    s.spread_buckets = m.spread.buckets;
    s.spread_occupied = m.spread.occupied;
    s.spread_longest = m.spread.longest;
    s.spread_dispersion_milli = uint64_t(m.spread.dispersion * 1000);
  }
  s.first_site = m.site;
  s.watched = m.watched;
  s.watch_skipped = m.watch_skipped;
  return s;
}

// Maps built one after the other at one address add up (print_stats keeps
// one record per map; the sidecar's series are per address).
void AddRow(mgs_map_stats &into, const mgs_map_stats &s) {
  into.reads += s.reads;
  into.writes += s.writes;
  into.iterations += s.iterations;
  into.rehashes += s.rehashes;
  into.users = std::max(into.users, s.users);
  into.threads = std::max(into.threads, s.threads);
  into.writer_threads = std::max(into.writer_threads, s.writer_threads);
  into.nonwriter_iterations += s.nonwriter_iterations;
  into.shared_writes += s.shared_writes;
  into.switches += s.switches;
  into.lock_waits += s.lock_waits;
  into.moved += s.moved;
  into.max_size = std::max(into.max_size, s.max_size);
  into.max_buckets = std::max(into.max_buckets, s.max_buckets);
  into.max_load_milli = std::max(into.max_load_milli, s.max_load_milli);
  if (s.spread_buckets) {
    into.spread_keys = s.spread_keys;
    into.spread_buckets = s.spread_buckets;
    into.spread_occupied = s.spread_occupied;
    into.spread_longest = s.spread_longest;
    into.spread_dispersion_milli = s.spread_dispersion_milli;
  }
  into.watched |= s.watched;
  into.watch_skipped += s.watch_skipped;
}

// The counters of `s` since `base` (the gauges stay what they are).
void Subtract(mgs_map_stats &s, const mgs_map_stats &base) {
  auto minus = [](__u64 &v, __u64 b) { v = v >= b ? v - b : 0; };
  minus(s.reads, base.reads);
  minus(s.writes, base.writes);
  minus(s.iterations, base.iterations);
  minus(s.rehashes, base.rehashes);
  minus(s.nonwriter_iterations, base.nonwriter_iterations);
  minus(s.shared_writes, base.shared_writes);
  minus(s.switches, base.switches);
  minus(s.lock_waits, base.lock_waits);
  minus(s.moved, base.moved);
}

}  // namespace

// Collections of one process replace its rows whole: one at a time (the
// metrics server's thread and the main loop both collect).
std::mutex g_collect_mu;
std::mutex g_control_mu;  // ApplyControl, NoteRegistry

// The process's registry, if it is a mapguard runtime's of this layout.
bool ReadRegistry(uint32_t pid, uint64_t registry_addr, mapguard::SidecarRegistry *reg,
                  std::string *why) {
  if (!ReadMemory(int(pid), registry_addr, reg, sizeof(*reg))) {
    const int e = errno;
    if (why)
      *why = e == EPERM
                 ? "cannot read its memory (process_vm_readv: EPERM): the sidecar needs "
                   "CAP_SYS_PTRACE as well (run it as root)"
                 : std::string("cannot read its memory: ") + strerror(e);
    if (e == ESRCH) {
      std::lock_guard<std::mutex> lock(g_state.mu);
      g_state.processes[pid].gone = true;
    }
    return false;
  }
  return true;
}

bool CollectRecords(uint32_t pid, uint64_t registry_addr, std::string *why) {
  std::lock_guard<std::mutex> collecting(g_collect_mu);
  {
    std::lock_guard<std::mutex> lock(g_state.mu);
    if (g_state.processes[pid].handed_over) return true;  // final already
  }
  mapguard::SidecarRegistry reg;
  std::string local_why;
  if (!why) why = &local_why;
  if (!ReadRegistry(pid, registry_addr, &reg, why)) {
    if (why->find("EPERM") != std::string::npos) {
      std::lock_guard<std::mutex> lock(g_state.mu);
      g_state.processes[pid].read_error = *why;
    }
    return false;
  }
  if (reg.magic != mapguard::kRegistryMagic) {
    if (why) *why = "its runtime has not started yet";
    return false;
  }
  if (reg.abi != mapguard::kStatsRecordAbi || reg.record_size != sizeof(mapguard::MapRecord)) {
    if (why)
      *why = "its runtime keeps statistics records of another layout (ABI " +
             std::to_string(reg.abi) + ", this sidecar reads " +
             std::to_string(mapguard::kStatsRecordAbi) + "): use the sidecar built with that runtime";
    return false;
  }
  std::map<uint64_t, SiteNames> names;
  {
    std::lock_guard<std::mutex> lock(g_state.mu);
    names = g_state.processes[pid].names;
  }
  std::map<uint64_t, mgs_map_stats> rows;
  uint64_t addr = reg.head, seen = 0;
  // Records are only ever added at the head, so the walk ends; the bound
  // guards against a process whose memory a race corrupted.
  const uint64_t limit = reg.records + 1024;
  mapguard::MapRecord rec;
  while (addr && seen++ < limit) {
    if (!ReadMemory(int(pid), addr, &rec, sizeof(rec))) {
      // Gone mid-walk (or a corrupted list): keep what the last whole
      // collection found.
      if (why) *why = std::string("cannot read a record: ") + strerror(errno);
      return false;
    }
    mgs_map_stats row = RowOf(rec);
    const SiteNames n = NamesOf(int(pid), rec.site, names);
    auto [it, fresh] = rows.emplace(rec.map, row);
    if (!fresh) AddRow(it->second, row);
    CopyText(it->second.type, sizeof(it->second.type), n.type);
    CopyText(it->second.name, sizeof(it->second.name), n.name);
    addr = rec.next;
  }
  std::lock_guard<std::mutex> lock(g_state.mu);
  ProcessRecords &p = g_state.processes[pid];
  p.registry = registry_addr;
  p.names = std::move(names);
  p.rows = std::move(rows);
  p.records = reg.records;
  p.watched_maps = reg.watched_maps;
  p.control = reg.control;
  p.collected = true;
  return true;
}

namespace {
// A write into the process, only where its registry is (the address may
// name something else in a process that reused a pid).
bool WriteRegistryWord(uint32_t pid, uint64_t registry_addr, size_t offset, uint64_t value) {
  mapguard::SidecarRegistry reg;
  if (!ReadRegistry(pid, registry_addr, &reg, nullptr) || reg.magic != mapguard::kRegistryMagic ||
      reg.abi != mapguard::kStatsRecordAbi || reg.record_size != sizeof(mapguard::MapRecord))
    return false;
  return WriteMemory(int(pid), registry_addr + offset, &value, sizeof(value));
}
}  // namespace

bool WriteControl(uint32_t pid, uint64_t registry_addr, uint64_t control) {
  // This sidecar reads the process's records at its exit: the runtime may
  // wait for it there (until Release says otherwise).
  return WriteRegistryWord(pid, registry_addr, offsetof(mapguard::SidecarRegistry, consumer), 1) &&
         WriteRegistryWord(pid, registry_addr, offsetof(mapguard::SidecarRegistry, control), control);
}

bool AcknowledgeHandover(uint32_t pid, uint64_t registry_addr, uint64_t seq) {
  return WriteRegistryWord(pid, registry_addr, offsetof(mapguard::SidecarRegistry, final_ack), seq);
}

void ReleaseProcesses() {
  std::vector<std::pair<uint32_t, uint64_t>> live;
  {
    std::lock_guard<std::mutex> lock(g_state.mu);
    for (auto &[pid, p] : g_state.processes)
      if (p.registry && !p.handed_over && !p.gone) live.push_back({pid, p.registry});
  }
  for (auto &[pid, reg] : live)
    WriteRegistryWord(pid, reg, offsetof(mapguard::SidecarRegistry, consumer), 0);
}

void TakeBaseline(uint32_t pid) {
  std::lock_guard<std::mutex> lock(g_state.mu);
  ProcessRecords &p = g_state.processes[pid];
  p.baseline = p.rows;
}

void CollectLive() {
  std::vector<std::pair<uint32_t, uint64_t>> live;
  {
    std::lock_guard<std::mutex> lock(g_state.mu);
    for (auto &[pid, p] : g_state.processes)
      if (p.registry && !p.handed_over && !p.gone) live.push_back({pid, p.registry});
  }
  for (auto &[pid, reg] : live) CollectRecords(pid, reg, nullptr);
}

int ApplyControl(uint64_t control) {
  // One control writer at a time: a process registered meanwhile gets the
  // newest value, never an older one written after it.
  std::lock_guard<std::mutex> writing(g_control_mu);
  std::vector<std::pair<uint32_t, uint64_t>> targets;
  {
    std::lock_guard<std::mutex> lock(g_state.mu);
    g_state.control = control;
    for (auto &[pid, p] : g_state.processes)
      if (p.registry && !p.handed_over && !p.gone) targets.push_back({pid, p.registry});
  }
  int n = 0;
  for (auto &[pid, reg] : targets) n += WriteControl(pid, reg, control);
  return n;
}

void NoteRegistry(uint32_t pid, uint64_t registry) {
  std::lock_guard<std::mutex> writing(g_control_mu);
  uint64_t control;
  {
    std::lock_guard<std::mutex> lock(g_state.mu);
    ProcessRecords &p = g_state.processes[pid];
    p.registry = registry;
    p.gone = false;
    control = g_state.control;
  }
  WriteControl(pid, registry, control);
}

uint64_t FindRegistry(uint32_t pid, const std::string &runtime) {
  // The symbol's address in the file, and the first loadable segment's.
  int fd = open(runtime.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SetupError{"cannot open " + runtime + ": " + strerror(errno)};
  struct stat st;
  fstat(fd, &st);
  elf_version(EV_CURRENT);
  Elf *elf = elf_begin(fd, ELF_C_READ, nullptr);
  uint64_t symbol = 0, first_load = ~uint64_t(0);
  size_t phnum = 0;
  if (elf && elf_getphdrnum(elf, &phnum) == 0) {
    for (size_t i = 0; i < phnum; i++) {
      GElf_Phdr ph;
      if (gelf_getphdr(elf, int(i), &ph) && ph.p_type == PT_LOAD)
        first_load = std::min<uint64_t>(first_load, ph.p_vaddr & ~uint64_t(4095));
    }
    for (Elf_Scn *scn = nullptr; (scn = elf_nextscn(elf, scn));) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM) continue;
      Elf_Data *data = elf_getdata(scn, nullptr);
      for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, int(i), &sym)) continue;
        const char *name = elf_strptr(elf, sh.sh_link, sym.st_name);
        if (name && !strcmp(name, "mapguard_sidecar_registry")) symbol = sym.st_value;
      }
    }
  }
  if (elf) elf_end(elf);
  close(fd);
  if (!symbol)
    throw SetupError{runtime + " has no mapguard_sidecar_registry symbol: it is a mapguard runtime "
                               "older than this sidecar; use the sidecar built with it"};
  // Where that file is mapped in the process: the mapping of file offset 0
  // (matched by device and inode, so a path seen through another mount
  // namespace still matches).
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, path;
    unsigned long inode = 0;
    in >> range >> perms >> offset >> dev >> inode >> path;
    unsigned major_dev = 0, minor_dev = 0;
    if (sscanf(dev.c_str(), "%x:%x", &major_dev, &minor_dev) != 2) continue;
    if (inode != st.st_ino || makedev(major_dev, minor_dev) != st.st_dev ||
        std::stoull(offset, nullptr, 16) != 0)
      continue;
    uint64_t start = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    return start - first_load + symbol;
  }
  throw SetupError{"process " + std::to_string(pid) + " does not map " + runtime};
}

std::vector<MapRow> ReadMapStats() {
  std::vector<MapRow> rows;
  std::lock_guard<std::mutex> lock(g_state.mu);
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> conflicts;
  for (const Conflict &k : g_state.kernel) conflicts[{k.tgid, k.map}]++;
  for (auto &[pid, p] : g_state.processes)
    for (auto &[map, s] : p.rows) {
      MapRow r{{pid, 0, map}, s};
      auto base = p.baseline.find(map);
      if (base != p.baseline.end()) Subtract(r.stats, base->second);
      // Not used since the sidecar attached, or since a fork (a child's
      // records start from zero): no series.
      if (!r.stats.reads && !r.stats.writes && !r.stats.iterations) continue;
      r.stats.conflicts = conflicts[{pid, map}];
      rows.push_back(r);
    }
  std::sort(rows.begin(), rows.end(), [](const MapRow &a, const MapRow &b) {
    uint64_t ta = a.stats.reads + a.stats.writes + a.stats.iterations;
    uint64_t tb = b.stats.reads + b.stats.writes + b.stats.iterations;
    return ta != tb ? ta > tb : std::tie(a.key.tgid, a.key.map) < std::tie(b.key.tgid, b.key.map);
  });
  return rows;
}

}  // namespace sidecar
