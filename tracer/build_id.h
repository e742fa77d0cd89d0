/*
 * The GNU build-id of a loaded module, as dl_iterate_phdr describes it.
 *
 * Header-only: the tracer records it in the module map, and the report's
 * benchmark and tests write module maps of their own with it.
 */
#ifndef UVT_TRACER_BUILD_ID_H
#define UVT_TRACER_BUILD_ID_H

#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The build-id in lower-case hex, malloc'd; NULL if the module has none
 * (or out of memory). */
static inline char *uvt__build_id_hex(const struct dl_phdr_info *info) {
  int i;
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    const char *p, *end;
    if (ph->p_type != PT_NOTE) continue;
    p = (const char *)(info->dlpi_addr + ph->p_vaddr);
    end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
      const char *name = p + sizeof(*nh);
      const unsigned char *desc =
          (const unsigned char *)(name + ((nh->n_namesz + 3) & ~3u));
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
          memcmp(name, "GNU", 4) == 0) {
        char *hex = malloc(nh->n_descsz * 2 + 1);
        unsigned k;
        if (hex == NULL) return NULL;
        for (k = 0; k < nh->n_descsz; k++) sprintf(hex + 2 * k, "%02x", desc[k]);
        hex[nh->n_descsz * 2] = '\0';
        return hex;
      }
      p = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
    }
  }
  return NULL;
}

#endif
