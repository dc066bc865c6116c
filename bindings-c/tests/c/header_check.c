/* The header compiles as strict C99 (see CMakeLists.txt, test header_c99). */
#include "capsa.h"

int main(void) {
  capsa_status s = capsa_last_error_code();
  return (int)s;
}
