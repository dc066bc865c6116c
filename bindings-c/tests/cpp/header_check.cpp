// capsa.h and capsa.hpp compile as C++17 (test header_cxx17).
#include "capsa.h"
#include "capsa.hpp"

int main() {
  capsa_status s = capsa_last_error_code();
  return static_cast<int>(s);
}
